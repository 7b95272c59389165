// Azure Communication Services holds the shop's phone number (bought in the portal: numbers
// cannot be bought from a template) and tells the app about each incoming call through an
// Event Grid system topic. The app answers with Call Automation, signed in with its
// identity: ACS has no narrower built-in data role, so the identity is Contributor on this
// one resource (nothing else).
param name string
param topicName string
param dataLocation string
param tags object
param appPrincipalId string
@description('Create the IncomingCall subscription: only once the app runs (Event Grid validates the webhook).')
param incomingCallSubscription bool
@secure()
@description('https://<app>/api/calls/incoming?secret=<ACS_WEBHOOK_SECRET>')
param incomingCallWebhook string

// Contributor
var contributorRole = 'b24988ac-6180-42a0-ab88-20f7382dd24c'

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource callAutomation 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, appPrincipalId, contributorRole)
  scope: acs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', contributorRole)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: topicName
  location: 'global'
  tags: tags
  properties: {
    source: acs.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

resource incomingCalls 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (incomingCallSubscription) {
  parent: topic
  name: 'aftercare-incoming-calls'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: incomingCallWebhook
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Communication.IncomingCall']
    }
    eventDeliverySchema: 'EventGridSchema'
    // A call rings for well under a minute: a late delivery cannot be answered anyway.
    retryPolicy: {
      maxDeliveryAttempts: 5
      eventTimeToLiveInMinutes: 1
    }
  }
}

output name string = acs.name
output endpoint string = 'https://${acs.properties.hostName}'
