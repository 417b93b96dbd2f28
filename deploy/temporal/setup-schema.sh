#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the version that this
# admin-tools image carries (run by the `temporal-schema` service before the server starts).
#
# Safe on every start and after an upgrade: `create` skips a database that exists, `setup-schema`
# keeps the recorded version, and `update-schema` applies only the versions not applied yet.
# The connection comes from temporal-sql-tool's own variables (SQL_PLUGIN, SQL_HOST, SQL_PORT,
# SQL_USER, SQL_PASSWORD), so the password never appears on a command line.
set -eu

schema_root=/etc/temporal/schema/postgresql/v12

setup() {
    database=$1
    versioned=$2
    echo "temporal-schema: ${database}"
    temporal-sql-tool --db "${database}" create
    temporal-sql-tool --db "${database}" setup-schema -v 0.0
    temporal-sql-tool --db "${database}" update-schema -d "${versioned}"
}

setup temporal "${schema_root}/temporal/versioned"
setup temporal_visibility "${schema_root}/visibility/versioned"
echo "temporal-schema: done"
