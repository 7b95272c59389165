# azd preprovision hook: the two secrets the template stores in Key Vault, generated once
# per azd environment (64 hex digits each: URL-safe, as ACS_WEBHOOK_SECRET must be).
$ErrorActionPreference = 'Stop'

function New-RandomHex {
    $bytes = New-Object byte[] 32
    [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    ($bytes | ForEach-Object { $_.ToString('x2') }) -join ''
}

foreach ($name in @('ACS_WEBHOOK_SECRET', 'DIRECT_LINE_SECRET')) {
    $value = azd env get-value $name 2>$null
    if ($LASTEXITCODE -ne 0 -or [string]::IsNullOrEmpty($value)) {
        azd env set $name (New-RandomHex)
        Write-Host "generated $name (kept in this azd environment and in Key Vault)"
    }
}
