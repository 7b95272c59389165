// Azure AI Speech for the phone channel. Entra ID sign-in needs a custom subdomain; keys off.
param name string
param location string
param tags object
param appPrincipalId string

// Cognitive Services Speech User: recognition and synthesis, no management.
var speechUserRole = 'f2dc8367-1007-4938-bd23-fe263f013447'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'SpeechServices'
  sku: { name: 'S0' }
  properties: {
    customSubDomainName: name
    publicNetworkAccess: 'Enabled'
    disableLocalAuth: true
  }
}

resource speechUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, speechUserRole)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', speechUserRole)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = account.id
output endpoint string = account.properties.endpoint
