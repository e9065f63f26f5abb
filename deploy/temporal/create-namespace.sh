#!/bin/sh
# Waits for the Temporal frontend, then creates Ferry's namespace if it is missing
# (temporalio/admin-tools). Ferry's worker registers its search attributes itself.
set -eu
address=${TEMPORAL_ADDRESS:-temporal:7233}
namespace=${NAMESPACE:-default}
i=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 90 ]; then echo "Temporal at $address is not healthy after 3 minutes" >&2; exit 1; fi
  sleep 2
done
if temporal operator namespace describe --address "$address" -n "$namespace" >/dev/null 2>&1; then
  echo "namespace $namespace exists"
else
  temporal operator namespace create --address "$address" -n "$namespace" \
    --retention "${RETENTION:-720h}"
  echo "namespace $namespace created"
fi
