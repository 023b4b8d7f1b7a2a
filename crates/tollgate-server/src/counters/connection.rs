//! The connection to the shared counters: one Redis (`redis://host:6379`) or a Redis Cluster
//! (`redis+cluster://host:7001,host:7002,...`, any reachable subset of the masters).
//!
//! Both speak the same commands: every script touches the keys of one customer, which share a
//! hash tag and so one slot (`keys`), and the cluster client sends it to the slot's master. What
//! differs is below this module: routing, `MOVED` redirections and reconnection are the `redis`
//! crate's. Pipelines are only sent with keys of one customer (a cluster refuses cross-slot
//! pipelines). Invalidations use classic pub/sub, which a cluster broadcasts to every node, so
//! the subscriber listens on any one node ([`Connector::subscriber_clients`]).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::CounterError;

/// The URL scheme of a Redis Cluster: the nodes comma-separated after it.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// How long one Redis command may take before it counts as a failure.
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1_000);

/// A connection to one Redis or to a cluster, cheap to clone (both multiplex one socket per node).
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The connection of checks plus what the invalidation subscriber needs (clients of its own:
/// pub/sub takes a connection over).
pub struct Connector {
    pub conn: Connection,
    /// One client per node named in the URL: the subscriber takes the first that answers.
    subscribers: Vec<redis::Client>,
    cluster: bool,
}

impl Connector {
    /// Prepares a connection to `url` without connecting: a node starts while Redis is down and
    /// connects on first use.
    pub fn new(url: &str) -> Result<Self, CounterError> {
        match cluster_nodes(url)? {
            None => {
                let client = redis::Client::open(url)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(RESPONSE_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(20))
                    .set_max_delay(Duration::from_millis(200));
                let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
                Ok(Connector {
                    conn: Connection::Single(conn),
                    subscribers: vec![client],
                    cluster: false,
                })
            }
            Some(nodes) => {
                let subscribers = nodes
                    .iter()
                    .map(|n| redis::Client::open(n.as_str()))
                    .collect::<Result<Vec<_>, _>>()?;
                let client = ClusterClient::builder(nodes)
                    // A check waits at most about a second for Redis (as on a single Redis).
                    .retries(1)
                    .min_retry_wait(20)
                    .max_retry_wait(200)
                    .build()?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(RESPONSE_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT);
                let conn = client.get_pending_async_connection_with_config(config);
                Ok(Connector {
                    conn: Connection::Cluster(conn),
                    subscribers,
                    cluster: true,
                })
            }
        }
    }

    /// Clients of the nodes the subscriber may listen on, in the URL's order.
    pub fn subscriber_clients(&self) -> &[redis::Client] {
        &self.subscribers
    }

    /// Whether the counters are on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }
}

/// The nodes of a `redis+cluster://` URL as plain `redis://` URLs (with the URL's user and
/// password, if any); `None` for any other URL.
pub fn cluster_nodes(url: &str) -> Result<Option<Vec<String>>, CounterError> {
    let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
        return Ok(None);
    };
    let bad = |why: &str| CounterError::BadUrl(format!("{}: {why}", redact(url)));
    // The path may be empty or `/0`: a cluster has only database 0.
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !(path.is_empty() || path == "0") {
        return Err(bad("a Redis Cluster has only database 0"));
    }
    let (auth, hosts) = match authority.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}"))
        .collect();
    if nodes.is_empty() {
        return Err(bad(
            "name at least one node, e.g. redis+cluster://127.0.0.1:7001",
        ));
    }
    Ok(Some(nodes))
}

/// A URL with its password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Whether `url` answers PING (one Redis, or every node of a cluster): for `tollgate doctor`.
pub async fn ping(url: &str) -> Result<String, CounterError> {
    match cluster_nodes(url)? {
        None => {
            let client = redis::Client::open(url)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            Ok(redis::cmd("PING").query_async::<String>(&mut conn).await?)
        }
        Some(nodes) => {
            let client = ClusterClient::new(nodes)?;
            let mut conn = client.get_async_connection().await?;
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await?;
            let state = info
                .lines()
                .find_map(|l| l.strip_prefix("cluster_state:"))
                .unwrap_or("unknown")
                .trim();
            if state != "ok" {
                return Err(CounterError::Protocol(format!(
                    "the cluster's state is {state:?}, not ok"
                )));
            }
            let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(format!("{pong} (cluster state ok)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379").unwrap(), None);
        assert_eq!(
            cluster_nodes("redis+cluster://10.0.0.1:7001,10.0.0.2:7002/").unwrap(),
            Some(vec![
                "redis://10.0.0.1:7001".to_owned(),
                "redis://10.0.0.2:7002".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@a:1,b:2").unwrap(),
            Some(vec![
                "redis://u:p@a:1".to_owned(),
                "redis://u:p@b:2".to_owned()
            ])
        );
        assert!(cluster_nodes("redis+cluster://").is_err());
        let e = cluster_nodes("redis+cluster://u:secret@a:1/3").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
