// The bot's container app. azd builds deployment/Dockerfile, pushes it to the registry and
// points this app at it (the `azd-service-name` tag tells it which app); until then, and on
// the first provision, it runs a placeholder image. Replicas are stateless: conversation
// state, the Direct Line log and the handoff queue live in Cosmos DB.
param name string
param location string
param tags object
@description('The app exists already: keep the image azd deployed instead of the placeholder.')
param exists bool
param environmentId string
param identityId string
param registryLoginServer string
param acsWebhookSecretUri string
param directLineSecretUri string
@description('Plain settings, name -> value: the app\'s environment variables.')
param settings object
param minReplicas int
param maxReplicas int
param cpu string = '2.0'
param memory string = '4Gi'

var port = 3978
var placeholderImage = 'mcr.microsoft.com/azuredocs/containerapps-helloworld:latest'

resource deployed 'Microsoft.App/containerApps@2024-03-01' existing = if (exists) {
  name: name
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    managedEnvironmentId: environmentId
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: port
        // HTTP/1.1 and WebSockets (the Direct Line stream, the phone's audio).
        transport: 'auto'
        allowInsecure: false
      }
      registries: [{ server: registryLoginServer, identity: identityId }]
      secrets: [
        { name: 'acs-webhook-secret', keyVaultUrl: acsWebhookSecretUri, identity: identityId }
        { name: 'direct-line-secret', keyVaultUrl: directLineSecretUri, identity: identityId }
      ]
    }
    template: {
      containers: [
        {
          name: 'aftercare'
          image: exists ? deployed.properties.template.containers[0].image : placeholderImage
          resources: { cpu: json(cpu), memory: memory }
          env: concat(
            [for setting in items(settings): { name: setting.key, value: string(setting.value) }],
            [
              { name: 'ACS_WEBHOOK_SECRET', secretRef: 'acs-webhook-secret' }
              { name: 'DIRECT_LINE_SECRET', secretRef: 'direct-line-secret' }
            ]
          )
          probes: [
            // The models load at start: up to 5 minutes before liveness counts.
            {
              type: 'Startup'
              httpGet: { path: '/healthz', port: port }
              periodSeconds: 10
              failureThreshold: 30
            }
            {
              type: 'Liveness'
              httpGet: { path: '/healthz', port: port }
              periodSeconds: 30
              failureThreshold: 3
            }
            // Out of rotation while Cosmos DB (or another dependency) is unusable.
            {
              type: 'Readiness'
              httpGet: { path: '/readyz', port: port }
              periodSeconds: 10
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [{ name: 'http', http: { metadata: { concurrentRequests: '50' } } }]
      }
    }
  }
}

output name string = app.name
