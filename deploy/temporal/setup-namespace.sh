#!/bin/sh
# Registers c2c's namespace and search attributes on a self-hosted Temporal (run by the
# `temporal-setup` service once the server is up). Usage:
#
#   setup-namespace.sh Name=Type [Name=Type ...]     e.g. ContractId=Keyword OpenExceptions=Int
#
# TEMPORAL_ADDRESS (host:port) and TEMPORAL_NAMESPACE name the server and namespace;
# NAMESPACE_RETENTION (default 720h) is how long Temporal keeps a closed contract's history.
# Safe to run again: what exists is left as it is, so a rerun after an upgrade only adds the
# search attributes that are new. A name registered with another type is an error that stops
# the stack, because workflows would fail to upsert it.
set -eu

address=${TEMPORAL_ADDRESS:-temporal:7233}
namespace=${TEMPORAL_NAMESPACE:-default}
retention=${NAMESPACE_RETENTION:-720h}
host=${address%:*}
port=${address##*:}

# The CLI is given an IPv4 address where the name has one: on a network that also has IPv6,
# the name can resolve first to an address the server does not listen on.
ip=$(getent ahosts "${host}" | awk '$1 ~ /^[0-9.]+$/ { print $1; exit }')
cli() {
    temporal "$@" --address "${ip:-${host}}:${port}"
}

# Runs the rest of the line until it succeeds: at most $1 times, $2 seconds apart; $3 is what
# the error says when it never does.
retry() {
    limit=$1
    delay=$2
    failure=$3
    shift 3
    attempt=1
    until "$@"; do
        if [ "${attempt}" -ge "${limit}" ]; then
            echo "temporal-setup: ${failure} after ${limit} attempts" >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        sleep "${delay}"
    done
}
serving() {
    cli operator cluster health 2>/dev/null | grep -q SERVING
}
list_search_attributes() {
    existing=$(cli operator search-attribute list --namespace "${namespace}" 2>/dev/null)
}

retry 60 2 "Temporal at ${address} is not serving" serving

if cli operator namespace describe --namespace "${namespace}" >/dev/null 2>&1; then
    echo "temporal-setup: namespace ${namespace} exists"
else
    cli operator namespace create --namespace "${namespace}" --retention "${retention}"
    echo "temporal-setup: namespace ${namespace} created (retention ${retention})"
fi

# A new namespace reaches every frontend's cache within seconds; until then it is "not found".
retry 30 1 "namespace ${namespace} is not ready" list_search_attributes

for spec in "$@"; do
    name=${spec%%=*}
    type=${spec#*=}
    registered=$(printf '%s\n' "${existing}" | awk -v n="${name}" '$1 == n { print $2 }')
    if [ -z "${registered}" ]; then
        cli operator search-attribute create --namespace "${namespace}" --name "${name}" --type "${type}"
        echo "temporal-setup: search attribute ${name} (${type}) created"
    elif [ "${registered}" = "${type}" ]; then
        echo "temporal-setup: search attribute ${name} (${type}) exists"
    else
        echo "temporal-setup: search attribute ${name} is ${registered}, c2c needs ${type}" >&2
        exit 1
    fi
done
echo "temporal-setup: done"
