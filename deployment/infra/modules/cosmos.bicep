// Cosmos DB for NoSQL, serverless, keys off: the database and its five containers are
// created here, exactly as shop/store/cosmos.py lays them out (every container partitioned
// by /id; the JSON body, or the state document, left out of the index), because the app's
// data-plane role may read and write items but not create containers (it runs with
// COSMOS_CREATE_CONTAINERS=false).
param name string
param location string
param tags object
param databaseName string = 'aftercare'
@description('The app\'s identity: Cosmos DB Built-in Data Contributor.')
param appPrincipalId string
@description('Optional: a person given the same data role, for `aftercare data import`.')
param userPrincipalId string = ''

// Cosmos DB Built-in Data Contributor (a Cosmos DB SQL role, not an Azure RBAC role):
// read and write items, read metadata; no control-plane writes.
var dataContributorRole = '00000000-0000-0000-0000-000000000002'

// name -> the path left out of the index. `state` has TTL on with no default expiry
// (defaultTtl -1): conversation data carries its own `ttl` (RETENTION_DAYS), and
// configuration documents without one are kept.
var containerSpecs = [
  { name: 'users', unindexed: '/body/?', ttl: false }
  { name: 'orders', unindexed: '/body/?', ttl: false }
  { name: 'products', unindexed: '/body/?', ttl: false }
  { name: 'lookups', unindexed: '/body/?', ttl: false }
  { name: 'state', unindexed: '/state/*', ttl: true }
]

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    locations: [{ locationName: location, failoverPriority: 0, isZoneRedundant: false }]
    capabilities: [{ name: 'EnableServerless' }]
    // Entra ID only; and no container or database changes through the data plane.
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: { id: databaseName }
  }
}

resource containers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for spec in containerSpecs: {
    parent: database
    name: spec.name
    properties: {
      resource: union(
        {
          id: spec.name
          partitionKey: { paths: ['/id'], kind: 'Hash', version: 2 }
          indexingPolicy: {
            indexingMode: 'consistent'
            automatic: true
            includedPaths: [{ path: '/*' }]
            excludedPaths: [{ path: spec.unindexed }, { path: '/"_etag"/?' }]
          }
        },
        spec.ttl ? { defaultTtl: -1 } : {}
      )
    }
  }
]

resource appData 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: account
  name: guid(account.id, appPrincipalId, dataContributorRole)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRole}'
    principalId: appPrincipalId
    scope: account.id
  }
}

resource userData 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (!empty(userPrincipalId)) {
  parent: account
  name: guid(account.id, userPrincipalId, dataContributorRole)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRole}'
    principalId: userPrincipalId
    scope: account.id
  }
}

output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
