# azd postdeploy hook. Event Grid validates a webhook when its subscription is created, so
# the IncomingCall subscription waits until the app runs: after the first deploy, turn it on
# and provision again (the app keeps its image: SERVICE_AFTERCARE_RESOURCE_EXISTS).
$ErrorActionPreference = 'Stop'

$subscribed = azd env get-value ACS_INCOMING_CALL_SUBSCRIPTION 2>$null
if ($LASTEXITCODE -ne 0 -or $subscribed -ne 'true') {
    Write-Host 'subscribing the app to incoming calls (Event Grid validates /api/calls/incoming now)'
    azd env set ACS_INCOMING_CALL_SUBSCRIPTION true
    azd provision --no-prompt
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

$appId = azd env get-value MICROSOFT_APP_ID
Write-Host ''
Write-Host "Aftercare runs at $(azd env get-value SERVICE_AFTERCARE_URI)"
Write-Host "Teams: .venv/bin/aftercare teams package --app-id $appId, then upload aftercare-teams.zip in Teams"
Write-Host "Phone: buy a number for $(azd env get-value ACS_RESOURCE_NAME) in the portal (Phone numbers > Get)"
