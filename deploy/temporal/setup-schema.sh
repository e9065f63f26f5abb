#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to this server
# version (temporalio/admin-tools). Safe to run on every start: existing databases are
# kept, and an up-to-date schema is left as it is.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port=${DB_PORT:-5432}
schemas=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=$schemas/temporal/versioned
  [ "$db" = temporal_visibility ] && dir=$schemas/visibility/versioned
  sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" \
            -u "$POSTGRES_USER" --db "$db" "$@"; }
  sql create
  sql setup-schema -v 0.0
  sql update-schema -d "$dir"
done
echo "Temporal schemas are up to date"
