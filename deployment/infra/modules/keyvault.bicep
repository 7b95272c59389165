// Key Vault for the app's two secrets: the Event Grid webhook secret (ACS_WEBHOOK_SECRET)
// and the Direct Line token-signing secret (DIRECT_LINE_SECRET). The container app reads
// them through Key Vault references with its identity (Key Vault Secrets User: read
// secret values, nothing else). Nothing else is a secret: every service signs in with Entra ID.
param name string
param location string
param tags object
param appPrincipalId string
@secure()
param acsWebhookSecret string
@secure()
param directLineSecret string

// Key Vault Secrets User
var secretsUserRole = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'acs-webhook-secret'
  properties: { value: acsWebhookSecret }
}

resource tokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'direct-line-secret'
  properties: { value: directLineSecret }
}

resource secretsRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, secretsUserRole)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRole)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
// Versionless: the app gets the current value when a revision starts.
output acsWebhookSecretUri string = '${vault.properties.vaultUri}secrets/${webhookSecret.name}'
output directLineSecretUri string = '${vault.properties.vaultUri}secrets/${tokenSecret.name}'
