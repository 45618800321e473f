#!/usr/bin/env bash
# Applies the plan reviewed on a pull request, from a jump host that reaches the servers.
#
#   apply-reviewed-plan.sh RUN_ID       the "exctl plan" workflow run of the merged pull
#                                       request (gh run list -w "exctl plan"): its plan.json
#   apply-reviewed-plan.sh plan.json    a plan file at hand (exctl plan --out plan.json)
#
# Run it from the root of a checkout of the manifest repository at the commit the plan was
# made from (git checkout <merge commit>): exctl refuses the plan if any manifest differs,
# and each site is observed again just before its turn and refused if a server changed
# since the review (the other sites go on, within the failure budget).
#
# Credentials come from this machine's keyring: run `exctl login SITE manifests/` once
# per keyring:NAME (or set EXCTL_KEYRING=env and EXCTL_SECRET_NAME).
#
# Rollout: the first site with changes alone (CANARY), then batches (BATCH), stopping new
# sites after MAX_FAILURES failed ones. The JSON result is kept in journal/ with the log;
# neither holds a password. Exit 0 only when every site is done or had nothing to do.
set -euo pipefail

CANARY=${CANARY:-1}
BATCH=${BATCH:-10}
MAX_FAILURES=${MAX_FAILURES:-1}
PARALLEL=${PARALLEL:-8}

if [ $# -ne 1 ]; then
  sed -n '2,20p' "$0" >&2
  exit 64
fi

plan=$1
if [ ! -f "$plan" ]; then
  # A run id: fetch the plan the pull request showed.
  dir=$(mktemp -d)
  gh run download "$1" --name exctl-plan --dir "$dir"
  plan="$dir/plan.json"
fi

if [ -n "$(git status --porcelain -- manifests)" ]; then
  echo "error: manifests/ has local changes; check out the commit the plan was made from" >&2
  exit 1
fi

mkdir -p journal
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "applying $plan at $(git rev-parse --short HEAD) (canary $CANARY, batches of $BATCH, max failures $MAX_FAILURES)" >&2

set +e
exctl apply "$plan" \
  --canary "$CANARY" --batch-size "$BATCH" --max-failures "$MAX_FAILURES" \
  --parallel "$PARALLEL" --progress lines --format json \
  > "journal/$stamp.json" 2> >(tee "journal/$stamp.log" >&2)
code=$?
set -e

# The per-site outcome, from the journal.
jq -r '.sites[] | [.site, .status, (.error // "")] | @tsv' "journal/$stamp.json" >&2 || true
exit "$code"
