//! Cache invalidation between nodes over Redis pub/sub (channel [`CHANNEL`]).
//!
//! Each node caches customers' state and keys. A plan change, suspension or key revocation is
//! applied at once on the node that made it; it publishes an [`Invalidation`] and every other
//! node reloads or forgets the same thing (milliseconds later). Pub/sub delivers only to
//! connected subscribers: a node whose subscription dropped may have missed messages, so when it
//! resubscribes it drops every cache (see `engine::propagation`).
//!
//! On a Redis Cluster this is classic pub/sub, which the cluster broadcasts to every node: the
//! publisher sends to any node and the subscriber listens on the first node of the URL that
//! answers (the next one after a failure). Sharded pub/sub (Redis 7) would deliver only within
//! one shard and is not used.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{CounterError, RedisCounters};

pub const CHANNEL: &str = "tollgate:invalidate";

/// Something one node changed that other nodes cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Invalidation {
    /// The customer's record or subscription changed (suspension, plan change, cancellation).
    Customer { workspace: String, customer: String },
    /// An API key (by secret hash) was revoked.
    Key { hash: String },
    /// A test clock moved (unix seconds).
    Clock {
        workspace: String,
        clock: String,
        at: i64,
    },
    /// A catalog version became the workspace's latest.
    Catalog { workspace: String, version: i64 },
}

/// The message on the wire: who sent it (a node ignores its own) and what changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub node: String,
    #[serde(flatten)]
    pub what: Invalidation,
}

/// Publishes; a failure is counted and logged by the backend, and otherwise ignored: the change
/// itself is committed, other nodes pick it up when they reload.
pub async fn publish(counters: &RedisCounters, node: &str, what: Invalidation) {
    let envelope = Envelope {
        node: node.to_owned(),
        what,
    };
    let payload = match serde_json::to_string(&envelope) {
        Ok(payload) => payload,
        Err(error) => {
            tracing::error!(%error, "an invalidation did not serialize; not published");
            return;
        }
    };
    if counters.publish(CHANNEL, &payload).await.is_ok() {
        metrics::counter!("tollgate_invalidations_published_total").increment(1);
    }
}

/// Subscribes on a connection of its own to the first of `clients` that answers, starting at
/// `first` (the caller moves it on after a failure); yields every envelope until the connection
/// ends.
pub async fn subscribe(
    clients: &[redis::Client],
    first: usize,
) -> Result<impl futures_util::Stream<Item = Envelope> + Send + use<>, CounterError> {
    let mut last = CounterError::Protocol("no Redis node to subscribe to".into());
    for i in 0..clients.len() {
        let client = &clients[(first + i) % clients.len()];
        match subscribe_to(client).await {
            Ok(pubsub) => return Ok(envelopes(pubsub)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn subscribe_to(client: &redis::Client) -> Result<redis::aio::PubSub, CounterError> {
    let connect = client.get_async_pubsub();
    let mut pubsub = tokio::time::timeout(std::time::Duration::from_secs(2), connect)
        .await
        .map_err(|_| CounterError::Protocol("timed out connecting the subscriber".into()))??;
    pubsub.subscribe(CHANNEL).await?;
    Ok(pubsub)
}

fn envelopes(
    pubsub: redis::aio::PubSub,
) -> impl futures_util::Stream<Item = Envelope> + Send + use<> {
    pubsub.into_on_message().filter_map(|msg| async move {
        let payload: String = msg.get_payload().ok()?;
        match serde_json::from_str::<Envelope>(&payload) {
            Ok(e) => Some(e),
            Err(error) => {
                tracing::warn!(%error, "ignoring a malformed invalidation message");
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_flat_json() {
        let e = Envelope {
            node: "n1".into(),
            what: Invalidation::Customer {
                workspace: "ws".into(),
                customer: "acme".into(),
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"node":"n1","t":"customer","workspace":"ws","customer":"acme"}"#
        );
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.what, e.what);
    }
}
