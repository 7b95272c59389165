// Aftercare on Azure, for `azd up` (azure.yaml at the repository root points here):
// Container Apps (with its registry) runs the bot; Azure Bot Service brings Teams and
// Direct Line; Cosmos DB (serverless) holds orders and conversations; Azure OpenAI answers;
// Azure AI Speech and Communication Services take phone calls; Key Vault keeps the two
// secrets; Log Analytics and Application Insights watch it. One user-assigned managed
// identity is the app's only credential: it is the bot's Microsoft App ID too, and holds
// data-plane roles on exactly the resources it uses, so nothing runs on keys.
// deployment/README.md walks through it; tests/deployment/ checks it.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name: names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every regional resource (azd asks).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Region of Azure OpenAI when the models are not offered in `location` (empty: `location`).')
param openAiLocation string = ''

@description('The signed-in user (azd fills AZURE_PRINCIPAL_ID): given Cosmos DB data access, for `aftercare data import` from a workstation. Empty: none.')
param principalId string = ''

@description('Whether the app\'s container app exists already (azd sets SERVICE_AFTERCARE_RESOURCE_EXISTS): its deployed image is kept on a re-provision.')
param appExists bool = false

@description('Subscribe the app to incoming calls. Event Grid validates the webhook when the subscription is created, so this is true only once the app runs: the postdeploy hook sets it and provisions again.')
param incomingCallSubscription bool = false

@secure()
@minLength(16)
@description('The secret in the Event Grid webhook URL (/api/calls/incoming?secret=...); the preprovision hook generates it once per environment.')
param acsWebhookSecret string

@secure()
@minLength(16)
@description('Signs the app\'s own Direct Line tokens (the Web Chat page); shared by every replica. The preprovision hook generates it.')
param directLineSecret string

@description('Chat model deployment.')
param chatModelName string = 'gpt-4o-mini'
param chatModelVersion string = '2024-07-18'
param chatDeploymentSku string = 'GlobalStandard'
@description('Thousands of tokens per minute.')
param chatDeploymentCapacity int = 30

@description('Embedding model deployment.')
param embeddingModelName string = 'text-embedding-3-small'
param embeddingModelVersion string = '1'
param embeddingDeploymentSku string = 'Standard'
param embeddingDeploymentCapacity int = 30

@description('Where Communication Services keeps its data at rest.')
param communicationDataLocation string = 'United States'

@allowed(['F0', 'S1'])
@description('Azure Bot Service tier: Teams and Direct Line are standard channels, free on both.')
param botSku string = 'F0'

@description('Days conversation data is kept (RETENTION_DAYS): each state item carries its own ttl.')
@minValue(1)
param retentionDays int = 90

@description('Seed an empty Cosmos DB with the demo shop shipped in the image (SEED_ON_START).')
param seedDemoShop bool = true

@minValue(1)
param minReplicas int = 1
@minValue(1)
param maxReplicas int = 5

var tags = { 'azd-env-name': environmentName }
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var serviceName = 'aftercare'
var appName = 'ca-${resourceToken}'
// Known before the app exists: a container app's address is its name under its
// environment's default domain. ACS calls back there, so PUBLIC_URL is this.
var publicUrl = 'https://${appName}.${containerEnvironment.outputs.defaultDomain}'

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: group
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: group
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: group
  params: {
    name: 'cr${resourceToken}'
    location: location
    tags: tags
    pullPrincipalId: identity.outputs.principalId
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: group
  params: {
    name: 'cosmos-${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module openAi 'modules/openai.bicep' = {
  name: 'openai'
  scope: group
  params: {
    name: 'oai-${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    appPrincipalId: identity.outputs.principalId
    chatModelName: chatModelName
    chatModelVersion: chatModelVersion
    chatDeploymentSku: chatDeploymentSku
    chatDeploymentCapacity: chatDeploymentCapacity
    embeddingModelName: embeddingModelName
    embeddingModelVersion: embeddingModelVersion
    embeddingDeploymentSku: embeddingDeploymentSku
    embeddingDeploymentCapacity: embeddingDeploymentCapacity
  }
}

module speech 'modules/speech.bicep' = {
  name: 'speech'
  scope: group
  params: {
    name: 'spch-${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: group
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    acsWebhookSecret: acsWebhookSecret
    directLineSecret: directLineSecret
  }
}

module containerEnvironment 'modules/containerenv.bicep' = {
  name: 'containerenv'
  scope: group
  params: {
    name: 'cae-${resourceToken}'
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.logAnalyticsName
  }
}

module app 'modules/containerapp.bicep' = {
  name: 'app'
  scope: group
  params: {
    name: appName
    location: location
    tags: union(tags, { 'azd-service-name': serviceName })
    exists: appExists
    environmentId: containerEnvironment.outputs.id
    identityId: identity.outputs.id
    registryLoginServer: registry.outputs.loginServer
    acsWebhookSecretUri: keyVault.outputs.acsWebhookSecretUri
    directLineSecretUri: keyVault.outputs.directLineSecretUri
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    settings: {
      // Bot Framework: the managed identity is the bot's app registration (no password).
      MicrosoftAppType: 'UserAssignedMSI'
      MicrosoftAppId: identity.outputs.clientId
      MicrosoftAppTenantId: tenant().tenantId
      // DefaultAzureCredential (Cosmos DB, OpenAI, Speech, ACS) picks this identity.
      AZURE_CLIENT_ID: identity.outputs.clientId
      PUBLIC_URL: publicUrl
      // Container Apps' ingress is one proxy that adds X-Forwarded-For.
      TRUSTED_PROXY_HOPS: '1'
      STORE: 'cosmos'
      COSMOS_ENDPOINT: cosmos.outputs.endpoint
      COSMOS_DATABASE: cosmos.outputs.databaseName
      // The containers are created above; the app's data-plane role may not create them.
      COSMOS_CREATE_CONTAINERS: 'false'
      SEED_ON_START: seedDemoShop ? 'true' : 'false'
      RETENTION_DAYS: string(retentionDays)
      LLM_PROVIDER: 'azure'
      AZURE_OPENAI_ENDPOINT: openAi.outputs.endpoint
      AZURE_OPENAI_CHAT_DEPLOYMENT: openAi.outputs.chatDeployment
      EMBEDDINGS_PROVIDER: 'azure'
      AZURE_OPENAI_EMBEDDING_DEPLOYMENT: openAi.outputs.embeddingDeployment
      SPEECH_PROVIDER: 'azure'
      AZURE_SPEECH_ENDPOINT: speech.outputs.endpoint
      AZURE_SPEECH_RESOURCE_ID: speech.outputs.id
      ACS_ENDPOINT: communication.outputs.endpoint
      APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.appInsightsConnectionString
    }
  }
  // The identity must hold AcrPull and Key Vault Secrets User before the app is created:
  // a revision that cannot pull its image or read its secrets fails to provision.
  dependsOn: [registry, keyVault]
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  scope: group
  params: {
    name: 'acs-${resourceToken}'
    topicName: 'evgt-acs-${resourceToken}'
    dataLocation: communicationDataLocation
    tags: tags
    appPrincipalId: identity.outputs.principalId
    incomingCallSubscription: incomingCallSubscription
    incomingCallWebhook: '${publicUrl}/api/calls/incoming?secret=${acsWebhookSecret}'
  }
}

module bot 'modules/bot.bicep' = {
  name: 'bot'
  scope: group
  params: {
    name: 'bot-${resourceToken}'
    tags: tags
    sku: botSku
    endpoint: '${publicUrl}/api/messages'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
  }
}

// azd reads these into the environment (.azure/<env>/.env); the first is how it finds the registry.
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = group.name
output SERVICE_AFTERCARE_NAME string = app.outputs.name
output SERVICE_AFTERCARE_URI string = publicUrl
output MICROSOFT_APP_ID string = identity.outputs.clientId
output BOT_NAME string = bot.outputs.name
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output AZURE_OPENAI_ENDPOINT string = openAi.outputs.endpoint
output AZURE_SPEECH_ENDPOINT string = speech.outputs.endpoint
output ACS_ENDPOINT string = communication.outputs.endpoint
output ACS_RESOURCE_NAME string = communication.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output ACS_INCOMING_CALL_SUBSCRIPTION bool = incomingCallSubscription
