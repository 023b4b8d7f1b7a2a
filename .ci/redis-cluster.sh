#!/usr/bin/env bash
# A local three-master Redis Cluster on loopback ports, for the shared-counter tests in cluster
# mode (TOLLGATE_TEST_REDIS_CLUSTER_URL). Idempotent: a healthy cluster already on the ports is
# left as it is; anything else on them is refused loudly rather than reused.
#
#   bash .ci/redis-cluster.sh            # ports 7001..7003, prints the URL to use
#   REDIS_CLUSTER_PORTS="7101 7102 7103" bash .ci/redis-cluster.sh
#   bash .ci/redis-cluster.sh stop       # shuts the three nodes down
#
# The last line of its output is the URL: redis+cluster://127.0.0.1:7001,127.0.0.1:7002,...
set -euo pipefail

read -r -a ports <<<"${REDIS_CLUSTER_PORTS:-7001 7002 7003}"
dir="${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/tollgate-redis-cluster}"
fail() { echo "FATAL: $*" >&2; exit 1; }

[ "${#ports[@]}" -eq 3 ] || fail "REDIS_CLUSTER_PORTS must name three ports, not '${ports[*]}'"
command -v redis-server >/dev/null || fail "redis-server is not installed"
command -v redis-cli >/dev/null || fail "redis-cli is not installed"

if [ "${1:-}" = "stop" ]; then
  for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  echo "stopped"
  exit 0
fi

url="redis+cluster://$(printf '127.0.0.1:%s,' "${ports[@]}")"
url="${url%,}"

healthy() {
  local info
  info="$(redis-cli -p "${ports[0]}" cluster info 2>/dev/null)" || return 1
  grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_size:3' <<<"$info" \
    && grep -q '^cluster_slots_assigned:16384' <<<"$info"
}

if healthy; then
  echo "Redis Cluster: already up on ${ports[*]}"
  echo "$url"
  exit 0
fi

mkdir -p "$dir"
for p in "${ports[@]}"; do
  if redis-cli -p "$p" ping >/dev/null 2>&1; then
    # Something answers but the cluster is not healthy: a cluster node left half set up can be
    # reset; a plain Redis (or anything else) on the port is not ours to touch.
    if ! redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:'; then
      fail "port $p answers but is not a Redis Cluster node; free it or set REDIS_CLUSTER_PORTS"
    fi
    redis-cli -p "$p" flushall >/dev/null 2>&1 || true
    redis-cli -p "$p" cluster reset hard >/dev/null || fail "could not reset the node on port $p"
  else
    rm -f "$dir/nodes-$p.conf" "$dir/dump-$p.rdb"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/nodes-$p.conf" --cluster-node-timeout 2000 \
      --dir "$dir" --dbfilename "dump-$p.rdb" --appendonly no --save '' \
      --daemonize yes --logfile "$dir/redis-$p.log" \
      || fail "redis-server did not start on port $p (see $dir/redis-$p.log)"
  fi
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$p" ping >/dev/null 2>&1 || fail "the node on port $p does not answer (see $dir/redis-$p.log)"
done

nodes=()
for p in "${ports[@]}"; do nodes+=("127.0.0.1:$p"); done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 \
  || { cat "$dir/create.log" >&2; fail "redis-cli --cluster create failed"; }

for _ in $(seq 1 100); do healthy && break; sleep 0.1; done
healthy || { redis-cli -p "${ports[0]}" cluster info >&2 || true; fail "the cluster did not become healthy"; }
echo "Redis Cluster: up on ${ports[*]} (data in $dir)"
echo "$url"
