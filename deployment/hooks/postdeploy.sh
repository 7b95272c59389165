#!/bin/sh
# azd postdeploy hook. Event Grid validates a webhook when its subscription is created, so
# the IncomingCall subscription waits until the app runs: after the first deploy, turn it on
# and provision again (the app keeps its image: SERVICE_AFTERCARE_RESOURCE_EXISTS).
set -eu

if [ "$(azd env get-value ACS_INCOMING_CALL_SUBSCRIPTION 2>/dev/null || true)" != "true" ]; then
    echo "subscribing the app to incoming calls (Event Grid validates /api/calls/incoming now)"
    azd env set ACS_INCOMING_CALL_SUBSCRIPTION true
    azd provision --no-prompt
fi

app_id=$(azd env get-value MICROSOFT_APP_ID)
echo
echo "Aftercare runs at $(azd env get-value SERVICE_AFTERCARE_URI)"
echo "Teams: .venv/bin/aftercare teams package --app-id $app_id, then upload aftercare-teams.zip in Teams"
echo "Phone: buy a number for $(azd env get-value ACS_RESOURCE_NAME) in the portal (Phone numbers > Get)"
