#!/usr/bin/env bash
# make demo: the main job end to end on the simulator, through the `arkiv`
# CLI against the running services: a partner onboards a customer whose
# admin connects the simulator's Microsoft 365 tenant and Google Workspace
# domain; Microsoft 365 is backed up in full, a few items are changed
# through Graph, and an incremental backup picks up exactly those changes;
# a message deleted for good is found in the backup and restored, and the
# mailbox is exported as MBOX; Google Workspace is backed up and a deleted
# Gmail message restored the same way.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# shellcheck source=/dev/null
source "$RUN_DIR/env"

ARKIV_BIN="$(target_dir)/debug/arkiv"
arkiv() { "$ARKIV_BIN" "$@" --json; }
as() { local token=$1; shift; ARKIV_TOKEN=$token arkiv "$@"; }

say "services"
"$(dirname "$0")/services.sh" status
manifest=$(curl -fsS "$ARKIV_SIM_URL/_sim/manifest")
say "simulator dataset"
jq -c '{dataset, m365: [.m365[].domain], google: [.google[].domain]}' <<< "$manifest"

run_id=$(date +%s)
say "the operator creates a partner and its admin"
partner=$(arkiv partner create --name "Demo MSP $run_id" | jq -r .id)
partner_admin=$(arkiv principal create --role partner-admin --partner "$partner" \
    --email "ops-$run_id@demo-msp.test" | jq -r .id)
partner_token=$(arkiv token create --principal "$partner_admin" | jq -r .token)

say "the partner onboards a customer in the EU"
tenant=$(as "$partner_token" tenant create --partner "$partner" --name "Contoso $run_id" --region eu)
jq -c '{id, name, region, subscription_state, trial_ends_at}' <<< "$tenant"
tenant=$(jq -r .id <<< "$tenant")
tenant_admin=$(as "$partner_token" principal create --role tenant-admin --tenant "$tenant" \
    --email "it-$run_id@contoso.test" | jq -r .id)
admin_token=$(as "$partner_token" token create --principal "$tenant_admin" | jq -r .token)

say "the customer's admin grants Microsoft 365 admin consent (the browser step, by curl)"
consent_url=$(as "$admin_token" connect m365 --tenant "$tenant" \
    --domain "$(jq -r '.m365[0].domain' <<< "$manifest")" | jq -r .consent_url)
curl -fsSL -o /dev/null "$consent_url"

say "and connects Google Workspace (domain-wide delegation checked)"
as "$admin_token" connect google --tenant "$tenant" \
    --domain "$(jq -r '.google[0].domain' <<< "$manifest")" \
    --admin "$(jq -r '.google[0].admin' <<< "$manifest")" | jq -c '{status}'

say "connections and the accounts discovered"
as "$admin_token" connection list --tenant "$tenant" | jq -c '.[] | {provider, status}'
as "$admin_token" account list --tenant "$tenant" \
    | jq -r '"\(length) protected accounts, \(map(select(.included)) | length) included"'
m365=$(as "$admin_token" connection list --tenant "$tenant" | jq -r '.[] | select(.provider == "m365") | .id')
say "a full Microsoft 365 backup (connector-m365 → RabbitMQ → worker → Garage and PostgreSQL)"
as "$admin_token" backup run --tenant "$tenant" --connection "$m365" --wait \
    | jq -c '{run_id, status, items, new_versions, bytes, errors, workloads}'

say "changes made through Microsoft Graph"
ms_tenant=$(jq -r '.m365[0].tenant_id' <<< "$manifest")
graph_token=$(curl -fsS "$ARKIV_SIM_URL/$ms_tenant/oauth2/v2.0/token" \
    -d grant_type=client_credentials -d scope=https://graph.microsoft.com/.default \
    --data-urlencode "client_id=$(jq -r '.m365[0].client_id' <<< "$manifest")" \
    --data-urlencode "client_secret=$(jq -r '.m365[0].client_secret' <<< "$manifest")" | jq -r .access_token)
graph() { curl -fsS -H "Authorization: Bearer $graph_token" -H 'Content-Type: application/json' "$@"; }
user=$(jq -r '.m365[0].users[0].id' <<< "$manifest")
upn=$(jq -r '.m365[0].users[0].userPrincipalName' <<< "$manifest")
curl -fsS -o /dev/null -H 'Content-Type: application/json' "$ARKIV_SIM_URL/_sim/m365/deliver" \
    -d "{\"tenant\": \"$ms_tenant\", \"user\": \"$upn\", \"from\": \"partner@example.test\", \"subject\": \"New since the last backup\", \"body\": \"Hello\"}"
echo "  delivered a new message to $upn"
message=$(graph "$ARKIV_SIM_URL/v1.0/users/$user/messages?\$top=1" | jq -c '.value[0] | {id, isRead}')
read_now=$(jq -r 'if .isRead then "false" else "true" end' <<< "$message")
graph -X PATCH "$ARKIV_SIM_URL/v1.0/users/$user/messages/$(jq -r .id <<< "$message")" \
    -d "{\"isRead\": $read_now}" > /dev/null
echo "  marked a message $([ "$read_now" = true ] && echo read || echo unread)"
graph -X PUT -H 'Content-Type: text/plain' --data-binary 'Minutes of the demo meeting' \
    "$ARKIV_SIM_URL/v1.0/users/$user/drive/root:/demo-minutes.txt:/content" > /dev/null
echo "  uploaded demo-minutes.txt to OneDrive"

say "an incremental backup: only what changed"
as "$admin_token" backup run --tenant "$tenant" --connection "$m365" --wait \
    | jq -c '{run_id, status, items, new_versions, bytes, errors}'

say "support hears \"I deleted an email, can you get it back?\""
victim=$(graph "$ARKIV_SIM_URL/v1.0/users/$user/mailFolders/inbox/messages?\$top=1" \
    | jq -c '.value[0] | {id, subject, internetMessageId}')
graph -X POST "$ARKIV_SIM_URL/v1.0/users/$user/messages/$(jq -r .id <<< "$victim")/permanentDelete" > /dev/null
echo "  $upn deleted \"$(jq -r .subject <<< "$victim")\" for good"
as "$admin_token" backup run --tenant "$tenant" --connection "$m365" --wait \
    | jq -c '{run_id, status, new_versions}'
words=$(jq -r '.subject | split(" ") | .[0:3] | join(" ")' <<< "$victim")
found=$(as "$admin_token" search --tenant "$tenant" --account "$upn" --text "$words" --deleted)
jq -c '.[] | {item_id, title, deleted_at_source}' <<< "$found"
as "$admin_token" restore --item "$(jq -r '.[0].item_id' <<< "$found")" --wait \
    | jq -c '{job_id, status, target, items_done}'
filter=$(jq -rn --arg id "$(jq -r .internetMessageId <<< "$victim")" '"internetMessageId eq \u0027\($id)\u0027" | @uri')
back=$(graph "$ARKIV_SIM_URL/v1.0/users/$user/mailFolders/inbox/messages?\$filter=$filter" | jq '.value | length')
echo "  the inbox holds the message again: $back copy"
export_file="$RUN_DIR/demo-$run_id.mbox"
as "$admin_token" export --tenant "$tenant" --account "$upn" --workload mail --format mbox \
    --out "$export_file" | jq -c '{path, items, bytes}'

say "Google Workspace (connector-google → RabbitMQ → worker → Garage and PostgreSQL)"
google=$(as "$admin_token" connection list --tenant "$tenant" | jq -r '.[] | select(.provider == "google") | .id')
as "$admin_token" backup run --tenant "$tenant" --connection "$google" --wait > /dev/null
echo "  its runs so far (the scheduler starts one as soon as a connection is active):"
curl -fsS -H "Authorization: Bearer $admin_token" "$ARKIV_API/v1/tenants/$tenant/backups" \
    | jq -c --arg c "$google" '.[] | select(.connection_id == $c) | {trigger, status, items, new_versions, bytes, errors}'

say "a Gmail message deleted for good, found and restored"
# A token acting as the user, as Google's own client library gets one
# (domain-wide delegation, the JWT-bearer grant against the simulator).
guser=$(jq -r '.google[0].users[1].primaryEmail' <<< "$manifest")
gtoken=$(jq -c '.google[0].service_account' <<< "$manifest" | "$ARKIV_STATE/venv/bin/python" -c '
import json, sys
from google.oauth2 import service_account
from google.auth.transport.requests import Request
info = json.load(sys.stdin)
creds = service_account.Credentials.from_service_account_info(
    info, scopes=["https://mail.google.com/"], subject=sys.argv[1])
creds.refresh(Request())
print(creds.token)' "$guser")
gmail() { curl -fsS -H "Authorization: Bearer $gtoken" "$@"; }
gid=$(gmail "$ARKIV_SIM_URL/gmail/v1/users/me/messages?maxResults=1" | jq -r '.messages[0].id')
gheaders=$(gmail "$ARKIV_SIM_URL/gmail/v1/users/me/messages/$gid?format=metadata&metadataHeaders=Subject&metadataHeaders=Message-ID")
gsubject=$(jq -r '.payload.headers[] | select(.name == "Subject") | .value' <<< "$gheaders")
gmsgid=$(jq -r '.payload.headers[] | select(.name | ascii_downcase == "message-id") | .value' <<< "$gheaders")
gmail -X DELETE "$ARKIV_SIM_URL/gmail/v1/users/me/messages/$gid" > /dev/null
echo "  $guser deleted \"$gsubject\" for good"
as "$admin_token" backup run --tenant "$tenant" --connection "$google" --wait \
    | jq -c '{run_id, status, new_versions}'
gwords=$(jq -rn --arg s "$gsubject" '$s | split(" ") | .[0:3] | join(" ")')
gfound=$(as "$admin_token" search --tenant "$tenant" --account "$guser" --workload mail --text "$gwords" --deleted)
jq -c '.[] | {item_id, title, deleted_at_source}' <<< "$gfound"
as "$admin_token" restore --item "$(jq -r '.[0].item_id' <<< "$gfound")" --wait \
    | jq -c '{job_id, status, target, items_done}'
gq=$(jq -rn --arg id "$gmsgid" '"rfc822msgid:\($id)" | @uri')
gback=$(gmail "$ARKIV_SIM_URL/gmail/v1/users/me/messages?q=$gq" | jq '.messages | length')
echo "  the mailbox holds the message again: $gback copy"

say "an erasure request (GDPR art. 17) for another Google account"
gerased=$(jq -r '.google[0].users[2].primaryEmail' <<< "$manifest")
erasure=$(as "$admin_token" erase --tenant "$tenant" --account "$gerased" --wait)
jq -c '{id, state, deleted_items, deleted_versions}' <<< "$erasure"
as "$admin_token" erasure certificate --id "$(jq -r .id <<< "$erasure")" \
    | jq -c '{erased_at, deleted, storage, list_hash}'

say "the tenant's audit chain"
as "$admin_token" audit verify --tenant "$tenant" | jq -c .
say "done: source .run/env to use the CLI against the running system"
