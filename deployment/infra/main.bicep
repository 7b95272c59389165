// Aftercare on Azure: App Service (Linux container) + Azure Bot (Teams, Direct Line) + Cosmos DB.
// Azure OpenAI and Azure AI Speech are referenced by endpoint; create them separately or pass existing ones.
targetScope = 'resourceGroup'

@description('Short name used as a prefix for every resource.')
param name string = 'aftercare'
param location string = resourceGroup().location
@description('Entra ID app registration (client) id of the bot.')
param microsoftAppId string
@secure()
param microsoftAppPassword string
@allowed(['MultiTenant', 'SingleTenant', 'UserAssignedMSI'])
param microsoftAppType string = 'SingleTenant'
param microsoftAppTenantId string = subscription().tenantId
param azureOpenAiEndpoint string = ''
param azureOpenAiChatDeployment string = 'gpt-4o-mini'

var suffix = uniqueString(resourceGroup().id)

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: '${name}-cosmos-${suffix}'
  location: location
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    locations: [ { locationName: location, failoverPriority: 0 } ]
    capabilities: [ { name: 'EnableServerless' } ]
    disableLocalAuth: true
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: cosmos
  name: 'aftercare'
  properties: { resource: { id: 'aftercare' } }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${name}-plan'
  location: location
  sku: { name: 'P0v3' }
  kind: 'linux'
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: '${name}-${suffix}'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'DOCKER|mcr.microsoft.com/appsvc/staticsite:latest'
      webSocketsEnabled: true
      healthCheckPath: '/healthz'
      appSettings: [
        { name: 'MicrosoftAppId', value: microsoftAppId }
        { name: 'MicrosoftAppPassword', value: microsoftAppPassword }
        { name: 'MicrosoftAppType', value: microsoftAppType }
        { name: 'MicrosoftAppTenantId', value: microsoftAppTenantId }
        { name: 'HOST', value: '0.0.0.0' }
        { name: 'PORT', value: '3978' }
        { name: 'WEBSITES_PORT', value: '3978' }
        { name: 'STORE', value: 'cosmos' }
        { name: 'COSMOS_ENDPOINT', value: cosmos.properties.documentEndpoint }
        { name: 'COSMOS_DATABASE', value: 'aftercare' }
        { name: 'LLM_PROVIDER', value: empty(azureOpenAiEndpoint) ? 'offline' : 'azure' }
        { name: 'AZURE_OPENAI_ENDPOINT', value: azureOpenAiEndpoint }
        { name: 'AZURE_OPENAI_CHAT_DEPLOYMENT', value: azureOpenAiChatDeployment }
      ]
    }
  }
}

// Cosmos DB Built-in Data Contributor for the app's managed identity (Entra ID auth, no keys).
resource cosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: cosmos
  name: guid(cosmos.id, site.id, 'data-contributor')
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/00000000-0000-0000-0000-000000000002'
    principalId: site.identity.principalId
    scope: cosmos.id
  }
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${name}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: { name: 'S1' }
  properties: {
    displayName: 'Aftercare'
    endpoint: 'https://${site.properties.defaultHostName}/api/messages'
    msaAppId: microsoftAppId
    msaAppType: microsoftAppType
    msaAppTenantId: microsoftAppType == 'MultiTenant' ? '' : microsoftAppTenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: { channelName: 'MsTeamsChannel', properties: { isEnabled: true } }
}

resource directLine 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'DirectLineChannel'
  location: 'global'
  properties: {
    channelName: 'DirectLineChannel'
    properties: { sites: [ { siteName: 'Web Chat', isEnabled: true, isV3Enabled: true, isSecureSiteEnabled: false } ] }
  }
}

output appUrl string = 'https://${site.properties.defaultHostName}'
output botName string = bot.name
output cosmosEndpoint string = cosmos.properties.documentEndpoint
