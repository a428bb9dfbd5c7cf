#!/usr/bin/env bash
# make demo: the main job end to end on the simulator. Until the backup
# pipeline exists, it shows every service up and healthy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# shellcheck source=/dev/null
source "$RUN_DIR/env"

say "services"
"$(dirname "$0")/services.sh" status
say "simulator dataset"
curl -fsS "$ARKIV_SIM_URL/_sim/manifest" | jq -c '{dataset, m365: (.m365 | length), google: (.google | length)}'
say "everything is healthy; source .run/env to use the CLI against it"
