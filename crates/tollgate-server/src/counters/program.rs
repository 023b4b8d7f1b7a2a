//! What a check asks of Redis and what it answers, as plain data, and their encoding into the
//! scripts' KEYS and ARGV (record layouts in `lua`).

use std::collections::HashMap;

use super::CounterError;

/// A counter in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Counter {
    /// A scaled integer: a meter's raw value in one billing period.
    Period { key: String, ttl_ms: u64 },
    /// An exact rolling window: a sorted set of uses scored by second, and their total.
    Window {
        zset: String,
        total: String,
        len_seconds: u64,
        ttl_ms: u64,
    },
}

impl Counter {
    /// How long the counter lives after its last write.
    pub fn ttl_ms(&self) -> u64 {
        match self {
            Counter::Period { ttl_ms, .. } | Counter::Window { ttl_ms, .. } => *ttl_ms,
        }
    }
}

/// One request rate limit to count.
#[derive(Debug, Clone)]
pub struct RateHit {
    pub key: String,
    pub limit: u64,
    pub ttl_ms: u64,
}

/// One quota to test, in the catalog's order.
#[derive(Debug, Clone)]
pub enum QuotaProbe {
    /// Fits if the counter is at most `ceiling` (scaled; `None`: no limit, read only).
    Counter {
        counter: Counter,
        ceiling: Option<i64>,
        hard: bool,
    },
    /// Decided outside Redis (a meter Redis cannot count); only its place in the order matters.
    Fixed { fits: bool, hard: bool },
}

/// One use to add to a counter (scaled `delta`; `at` and `member` for windows).
#[derive(Debug, Clone)]
pub struct Increment {
    pub counter: Counter,
    pub delta: i64,
    pub at: i64,
    pub member: String,
}

/// Everything one check asks of Redis, run as one script.
#[derive(Debug, Clone, Default)]
pub struct CheckProgram {
    pub now: i64,
    pub rates: Vec<RateHit>,
    pub quotas: Vec<QuotaProbe>,
    /// Added only if every rate limit and hard quota admits.
    pub reserve: Vec<Increment>,
}

/// What the check script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckReply {
    /// These quotas' counters (0-based) do not exist yet: seed them and ask again. Nothing changed.
    NeedSeed(Vec<usize>),
    /// Rate limit `index` refused. `counts[i]`: rate counter `i` after this request (the last
    /// one: the refusing counter, not incremented).
    RateLimited { index: usize, counts: Vec<u64> },
    /// Quota `index` refused; for a window, the second of the entry whose expiry makes room.
    QuotaDenied {
        index: usize,
        counts: Vec<u64>,
        used: Vec<Option<i64>>,
        frees_at: Option<i64>,
    },
    /// Admitted (and reserved, if asked).
    Admitted {
        counts: Vec<u64>,
        used: Vec<Option<i64>>,
    },
}

/// A counter to create from the store's values.
#[derive(Debug, Clone)]
pub struct Seed {
    pub counter: Counter,
    /// The scaled value (for a window: the sum of its entries' deltas).
    pub value: i64,
    /// For a window: `(second, member)` of each use still inside it.
    pub entries: Vec<(i64, String)>,
}

/// Fills KEYS once per distinct key and hands out 1-based indexes.
#[derive(Default)]
pub(super) struct KeyTable {
    keys: Vec<String>,
    index: HashMap<String, usize>,
}

impl KeyTable {
    fn of(&mut self, key: &str) -> usize {
        if let Some(i) = self.index.get(key) {
            return *i;
        }
        self.keys.push(key.to_owned());
        self.index.insert(key.to_owned(), self.keys.len());
        self.keys.len()
    }

    /// `(kind, key index, total index, window length)` of a counter.
    fn counter(&mut self, counter: &Counter) -> (&'static str, usize, usize, u64) {
        match counter {
            Counter::Period { key, .. } => ("p", self.of(key), 0, 0),
            Counter::Window {
                zset,
                total,
                len_seconds,
                ..
            } => ("w", self.of(zset), self.of(total), *len_seconds),
        }
    }

    fn increment(&mut self, args: &mut Vec<String>, inc: &Increment) {
        let (kind, k, t, len) = self.counter(&inc.counter);
        let ttl = inc.counter.ttl_ms();
        args.extend([
            kind.to_owned(),
            k.to_string(),
            t.to_string(),
            len.to_string(),
            inc.at.to_string(),
            inc.member.clone(),
            inc.delta.to_string(),
            ttl.to_string(),
        ]);
    }
}

pub(super) fn invocation<'a>(
    script: &'a redis::Script,
    keys: &KeyTable,
    args: &[String],
) -> redis::ScriptInvocation<'a> {
    let mut inv = script.prepare_invoke();
    for k in &keys.keys {
        inv.key(k);
    }
    for a in args {
        inv.arg(a);
    }
    inv
}

pub(super) fn number<T: std::str::FromStr>(text: &str) -> Result<T, CounterError> {
    text.parse()
        .map_err(|_| CounterError::Protocol(format!("{text:?} is not a number")))
}

/// The check script's KEYS and ARGV (layouts in `lua`).
pub(super) fn encode_check(program: &CheckProgram) -> (KeyTable, Vec<String>) {
    let mut keys = KeyTable::default();
    let mut args = vec![program.now.to_string(), program.rates.len().to_string()];
    for r in &program.rates {
        let k = keys.of(&r.key);
        args.extend([k.to_string(), r.limit.to_string(), r.ttl_ms.to_string()]);
    }
    args.push(program.quotas.len().to_string());
    for q in &program.quotas {
        let (kind, k, t, len, ceiling, hard, fits) = match q {
            QuotaProbe::Counter {
                counter,
                ceiling,
                hard,
            } => {
                let (kind, k, t, len) = keys.counter(counter);
                (
                    kind,
                    k,
                    t,
                    len,
                    ceiling.map(|c| c.to_string()).unwrap_or_default(),
                    *hard,
                    true,
                )
            }
            QuotaProbe::Fixed { fits, hard } => ("f", 0, 0, 0, String::new(), *hard, *fits),
        };
        args.extend([
            kind.to_owned(),
            k.to_string(),
            t.to_string(),
            len.to_string(),
            ceiling,
            flag(hard),
            flag(fits),
        ]);
    }
    args.push(program.reserve.len().to_string());
    for inc in &program.reserve {
        keys.increment(&mut args, inc);
    }
    (keys, args)
}

/// KEYS and ARGV of the apply and give-back scripts.
pub(super) fn encode_increments(now: i64, increments: &[Increment]) -> (KeyTable, Vec<String>) {
    let mut keys = KeyTable::default();
    let mut args = vec![now.to_string(), increments.len().to_string()];
    for inc in increments {
        keys.increment(&mut args, inc);
    }
    (keys, args)
}

/// KEYS and ARGV of the seed script.
pub(super) fn encode_seeds(seeds: &[Seed]) -> (KeyTable, Vec<String>) {
    let mut keys = KeyTable::default();
    let mut args = vec![seeds.len().to_string()];
    for s in seeds {
        let (kind, k, t, _) = keys.counter(&s.counter);
        args.extend([
            kind.to_owned(),
            k.to_string(),
            t.to_string(),
            s.counter.ttl_ms().to_string(),
        ]);
        args.extend([s.value.to_string(), s.entries.len().to_string()]);
        for (at, member) in &s.entries {
            args.extend([at.to_string(), member.clone()]);
        }
    }
    (keys, args)
}

fn flag(b: bool) -> String {
    if b { "1".into() } else { "0".into() }
}

pub(super) fn parse_check(reply: &[String]) -> Result<CheckReply, CounterError> {
    let bad = || CounterError::Protocol(format!("check script replied {reply:?}"));
    let status = reply.first().ok_or_else(bad)?;
    if status == "seed" {
        return reply[1..]
            .iter()
            .map(|i| number::<usize>(i).map(|i| i - 1))
            .collect::<Result<_, _>>()
            .map(CheckReply::NeedSeed);
    }
    if reply.len() < 4 {
        return Err(bad());
    }
    let index = number::<usize>(&reply[1])?.saturating_sub(1);
    let n_counts = number::<usize>(&reply[3])?;
    let counts = reply
        .get(4..4 + n_counts)
        .ok_or_else(bad)?
        .iter()
        .map(|c| number::<u64>(c))
        .collect::<Result<Vec<_>, _>>()?;
    let used = reply[4 + n_counts..]
        .iter()
        .map(|u| {
            if u.is_empty() {
                Ok(None)
            } else {
                number::<i64>(u).map(Some)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    // A score is an integer second; Redis may print it in float notation.
    let frees_at = match reply[2].as_str() {
        "" => None,
        s => Some(
            s.parse::<i64>()
                .or_else(|_| s.parse::<f64>().map(|f| f as i64))
                .map_err(|_| bad())?,
        ),
    };
    match status.as_str() {
        "rate" => Ok(CheckReply::RateLimited { index, counts }),
        "quota" => Ok(CheckReply::QuotaDenied {
            index,
            counts,
            used,
            frees_at,
        }),
        "ok" => Ok(CheckReply::Admitted { counts, used }),
        _ => Err(bad()),
    }
}
