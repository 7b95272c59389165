#!/bin/sh
# azd preprovision hook: the two secrets the template stores in Key Vault, generated once
# per azd environment (64 hex digits each: URL-safe, as ACS_WEBHOOK_SECRET must be).
set -eu

random_hex() {
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

for name in ACS_WEBHOOK_SECRET DIRECT_LINE_SECRET; do
    if [ -z "$(azd env get-value "$name" 2>/dev/null || true)" ]; then
        azd env set "$name" "$(random_hex)"
        echo "generated $name (kept in this azd environment and in Key Vault)"
    fi
done
