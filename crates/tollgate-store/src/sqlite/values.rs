//! Multi-row `VALUES` statements for the SQLite hot path.
//!
//! A batch of rows goes to SQLite as a few statements of many rows each, with every value a bound
//! parameter. Statement texts depend only on the number of rows, and that is always `CHUNK` or a
//! smaller power of two (a batch of 1,000 is sent as 512 + 256 + 128 + 64 + 32 + 8), so each
//! statement has at most `SIZES` texts: all are prepared once per connection and reused from
//! sqlx's statement cache.
//!
//! Two things measured on the way here: passing rows as one JSON parameter unpacked with
//! `json_each` cost more than the inserts themselves (each column re-parses its element); and
//! numbered parameters (`?1`, `?2`, ...) make binding quadratic, because sqlx asks SQLite for
//! every parameter's name and SQLite finds it by a linear scan. Anonymous `?` parameters have no
//! name, so every row repeats the workspace as its first value instead of sharing `?1`.

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection};
use std::ops::Range;
use std::sync::OnceLock;

use crate::StoreResult;

/// Rows per statement at most. 512 rows of 8 values stay far below SQLite's limit of 32,766
/// parameters.
pub(super) const CHUNK: usize = 512;
/// Texts per statement: one per power of two up to `CHUNK`.
const SIZES: usize = CHUNK.trailing_zeros() as usize + 1;

pub(super) type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments>;

/// A statement of the form `head (?, ?, ...), (?, ?, ...) tail`, where each row starts with the
/// workspace and goes on with `width` values the caller binds. The tail must not add parameters.
pub(super) struct Values {
    head: &'static str,
    tail: &'static str,
    width: usize,
    texts: OnceLock<Vec<String>>,
}

impl Values {
    pub(super) const fn new(head: &'static str, width: usize, tail: &'static str) -> Self {
        Values {
            head,
            tail,
            width,
            texts: OnceLock::new(),
        }
    }

    /// The text for `rows` rows, a power of two up to `CHUNK`.
    fn sql(&'static self, rows: usize) -> &'static str {
        debug_assert!(rows.is_power_of_two() && rows <= CHUNK);
        let texts = self
            .texts
            .get_or_init(|| (0..SIZES).map(|i| self.build(1 << i)).collect());
        &texts[rows.trailing_zeros() as usize]
    }

    fn build(&self, rows: usize) -> String {
        let row = format!("(?{})", ", ?".repeat(self.width));
        let mut sql =
            String::with_capacity(self.head.len() + self.tail.len() + rows * (row.len() + 2));
        sql.push_str(self.head);
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&row);
        }
        sql.push_str(self.tail);
        sql
    }

    /// Runs the statement over all `rows`, binding each with `bind` after its workspace, and
    /// returns the rows it returned (for `RETURNING`), in piece order.
    pub(super) async fn run<'a, T>(
        &'static self,
        conn: &mut SqliteConnection,
        workspace: &'a str,
        rows: &'a [T],
        bind: impl Fn(SqliteQuery<'a>, &'a T) -> SqliteQuery<'a>,
    ) -> StoreResult<Vec<SqliteRow>> {
        let mut out = Vec::new();
        for piece in pieces(rows.len()) {
            let sql = self.sql(piece.len());
            let query = rows[piece]
                .iter()
                .fold(sqlx::query(AssertSqlSafe(sql)), |q, row| {
                    bind(q.bind(workspace), row)
                });
            out.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(out)
    }
}
/// Splits `0..len` into full chunks, then power-of-two pieces of the rest, largest first.
fn pieces(len: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while len - start >= CHUNK {
        out.push(start..start + CHUNK);
        start += CHUNK;
    }
    let mut size = CHUNK / 2;
    while size > 0 {
        if (len - start) & size != 0 {
            out.push(start..start + size);
            start += size;
        }
        size /= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_batch_in_powers_of_two() {
        for len in [0, 1, 2, 3, 7, 511, 512, 513, 1000, 1024, 2500] {
            let p = pieces(len);
            let mut next = 0;
            for r in &p {
                assert_eq!(r.start, next);
                assert!(r.len().is_power_of_two() && r.len() <= CHUNK);
                next = r.end;
            }
            assert_eq!(next, len);
        }
        assert_eq!(pieces(1000).len(), 6);
    }

    #[test]
    fn statement_texts_repeat_the_row() {
        static S: Values = Values::new("INSERT INTO t (w, a, b) VALUES ", 2, " RETURNING a");
        assert_eq!(
            S.sql(1),
            "INSERT INTO t (w, a, b) VALUES (?, ?, ?) RETURNING a"
        );
        assert_eq!(
            S.sql(2),
            "INSERT INTO t (w, a, b) VALUES (?, ?, ?), (?, ?, ?) RETURNING a"
        );
    }
}
