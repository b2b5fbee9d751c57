//! Reading a table: chunks in key order, each in a read view of its own
//! paired with a binlog point, or a keyless table in one view.

use super::*;

impl Snapshotter {
    /// Whether the open table's columns are no longer what it was opened
    /// with.
    pub(super) fn altered(&mut self, t: &TablePlan) -> Result<bool, SourceError> {
        let cfg = self.target();
        let now: Option<Vec<u8>> = self
            .conn()?
            .exec_first(
                "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR 0x01) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.database, &t.table),
            )
            .map_err(|e| classify(&cfg, "reading information_schema.COLUMNS", e))?
            .flatten();
        let known = self.table.as_ref().map(|r| {
            r.schema
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join("\u{1}")
        });
        Ok(now.map(|n| String::from_utf8_lossy(&n).into_owned()) != known)
    }

    /// Opens `t` for reading; refuses (with the reason) a `--where` that
    /// does not fit the table's columns.
    pub(super) fn open_table(
        &mut self,
        t: &TablePlan,
        cat: CatalogTable,
        reopened: bool,
    ) -> Result<(), String> {
        let name = t.name();
        let condition = match &t.condition {
            None => None,
            Some(text) => Some(render_condition(text, &cat.schema)?),
        };
        let quote = |s: &str| format!("`{}`", s.replace('`', "``"));
        let schema = Arc::new(cat.schema);
        let select = schema
            .columns
            .iter()
            .map(|c| {
                if matches!(
                    crate::source::schema::real_type(c),
                    mysql::consts::ColumnType::MYSQL_TYPE_ENUM
                        | mysql::consts::ColumnType::MYSQL_TYPE_SET
                ) {
                    format!("({}+0)", quote(&c.name))
                } else {
                    quote(&c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let from = format!("{}.{}", quote(&t.database), quote(&t.table));
        let (key, order, index) = match &cat.key {
            Some((index, cols)) => (
                Some(cols.clone()),
                cols.iter()
                    .map(|&i| quote(&schema.columns[i].name))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!(" FORCE INDEX ({})", quote(index)),
            ),
            None => (None, String::new(), String::new()),
        };
        match &cat.key {
            _ if reopened => {}
            Some((index, _)) if t.after.is_none() => log::info!(
                "snapshot of {name} started: about {} rows, in chunks of up to {} by {} ({})",
                cat.estimate,
                self.cfg.snapshot_chunk_rows,
                if index == "PRIMARY" { "primary key" } else { "unique key" },
                order
            ),
            Some(_) => log::info!(
                "snapshot of {name} resumed after the last chunk released ({} rows sent before)",
                t.rows
            ),
            None if t.started => log::warn!(
                "snapshot of {name}: it has no primary key or unique NOT NULL key, so it is read again from its beginning after the restart"
            ),
            None => log::info!(
                "snapshot of {name} started: about {} rows; no primary key or unique NOT NULL key, so it is read in one consistent read (the stream waits at its point while the rows go out)",
                cat.estimate
            ),
        }
        if !reopened {
            self.shared
                .board
                .snapshot_started(&name, cat.estimate, t.rows);
        }
        self.table = Some(Reading {
            name,
            schema,
            key,
            select: format!("SELECT {select} FROM {from}{index}"),
            order,
            condition,
        });
        Ok(())
    }

    /// Opens a read view that has seen everything the stream had carried
    /// when the reader last answered (see [`Horizon::covers`]): a view
    /// opened while such a transaction was still committing is opened
    /// again a moment later. `None` when the pipeline stops or the reader
    /// moved to another server first.
    pub(super) fn open_view(&mut self) -> Result<Option<Horizon>, SourceError> {
        let started = Instant::now();
        let mut warned = false;
        loop {
            let horizon = self.open_view_once()?;
            let Some(floor) = self.floor.as_ref().filter(|f| !horizon.covers(f)) else {
                return Ok(Some(horizon));
            };
            log::debug!(
                "snapshot: a read view at {horizon:?} has not seen all the stream read (to {}:{}); opening another",
                floor.file,
                floor.pos
            );
            if !warned && started.elapsed() >= Duration::from_secs(10) {
                warned = true;
                log::warn!(
                    "snapshot: for 10 s the server's read views have not seen transactions it already sent to the binlog stream (read to {}:{}): one is still committing; the snapshot waits for it",
                    floor.file,
                    floor.pos
                );
            }
            let _ = self.conn()?.query_drop("ROLLBACK");
            if self.stale() {
                return Ok(None);
            }
            self.sleep(Duration::from_millis(5));
        }
    }

    /// Opens a read view and finds its binlog point.
    fn open_view_once(&mut self) -> Result<Horizon, SourceError> {
        let cfg = self.target();
        let conn = self.conn()?;
        let q = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
        conn.query_drop(q).map_err(|e| classify(&cfg, q, e))?;
        let status: Vec<(String, String)> = conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .map_err(|e| classify(&cfg, "SHOW STATUS LIKE 'binlog_snapshot_%'", e))?;
        let get = |n: &str| {
            status
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        if let (Some(file), Some(pos)) =
            (get("Binlog_snapshot_file"), get("Binlog_snapshot_position"))
        {
            if let Ok(pos) = pos.parse() {
                if !file.is_empty() {
                    return Ok(Horizon::At { file, pos });
                }
            }
        }
        // MySQL: no exact pairing. Visible: the GTIDs executed before this
        // view opened; after it, nothing past the binlog end read now.
        let _ = conn.query_drop("ROLLBACK");
        let executed: Option<String> = conn
            .query_first("SELECT @@GLOBAL.gtid_executed")
            .map_err(|e| classify(&cfg, "reading gtid_executed", e))?;
        let executed = executed
            .and_then(|s| crate::gtid::MysqlSet::parse(&s).ok())
            .ok_or_else(|| SourceError::Setting {
                detail: "snapshots need a read view paired with a binlog point: MariaDB or Percona Server (binlog_snapshot_file), or MySQL with gtid_mode=ON; this server has neither".into(),
            })?;
        conn.query_drop(q).map_err(|e| classify(&cfg, q, e))?;
        let (file, pos) = crate::source::head_position(conn, &cfg)?;
        Ok(Horizon::Gtids {
            executed: Arc::new(executed),
            file,
            pos,
        })
    }

    /// Reads and hands over the next chunk of a keyed table.
    pub(super) fn chunk(&mut self, current: &TablePlan) -> Result<(), SourceError> {
        let budget = (self.cfg.max_in_flight_bytes / 4).clamp(1 << 20, 8 << 20) as usize;
        let limit = match self.row_bytes {
            0 => self.cfg.snapshot_chunk_rows.min(1024),
            // At least 64 rows a chunk where the setting allows that many,
            // whatever their size; never more than the setting.
            b => (budget / b.max(1))
                .max(64)
                .min(self.cfg.snapshot_chunk_rows),
        };
        let t = self.table.as_ref().expect("open");
        let key = t.key.clone().expect("keyed");
        let schema = t.schema.clone();
        let mut sql = t.select.clone();
        let mut params: Vec<Value> = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        if let Some((c, p)) = &t.condition {
            conds.push(c.clone());
            params.extend(p.iter().cloned());
        }
        if let Some(after) = &current.after {
            // (k1, k2, ...) > (v1, v2, ...), spelled out so that the range
            // optimizer uses the index on every server.
            let names: Vec<String> = key
                .iter()
                .map(|&i| format!("`{}`", schema.columns[i].name.replace('`', "``")))
                .collect();
            let mut ors = Vec::new();
            for n in 0..names.len() {
                let mut ands = Vec::new();
                for (j, name) in names.iter().enumerate().take(n) {
                    ands.push(format!("{name} = ?"));
                    params.push(after[j].to_value());
                }
                ands.push(format!("{} > ?", names[n]));
                params.push(after[n].to_value());
                ors.push(format!("({})", ands.join(" AND ")));
            }
            conds.push(format!("({})", ors.join(" OR ")));
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {}", t.order, limit + 1));
        let name = t.name.clone();
        let Some(horizon) = self.open_view()? else {
            return Ok(());
        };
        let cfg = self.target();
        let conn = self.conn()?;
        let result: Result<Vec<Vec<Value>>, mysql::Error> = conn
            .exec_iter(&sql, params)
            .and_then(|r| r.map(|row| row.map(mysql::Row::unwrap)).collect());
        let _ = conn.query_drop("COMMIT");
        let mut values = match result {
            Ok(v) => v,
            // The table or a column went away between the check and the
            // query, or the table was recreated after the read view opened
            // (1412: a RENAME, DROP, ALTER or TRUNCATE racing the chunk):
            // open it again, which finds out what happened.
            Err(mysql::Error::MySqlError(me)) if matches!(me.code, 1146 | 1054 | 1412) => {
                log::debug!("snapshot of {name}: {}; opening it again", me.message);
                self.table = None;
                self.watching = None;
                return Ok(());
            }
            Err(mysql::Error::MySqlError(me)) if matches!(current.reason, Reason::Requested(_)) => {
                let why = format!("the server refused the query: {}", me.message);
                self.fail_request(current, &why)?;
                self.table = None;
                self.watching = None;
                return Ok(());
            }
            Err(e) => return Err(classify(&cfg, &format!("reading a chunk of {name}"), e)),
        };
        let more = values.len() > limit;
        values.truncate(limit);
        // Where the next chunk starts: after the last row's key (a row of
        // another shape fails the encoding below).
        let last_key = values
            .last()
            .filter(|v| v.len() == schema.columns.len())
            .map(|v| {
                key.iter()
                    .map(|&i| boundary_value(&schema.columns[i], &v[i]))
                    .collect()
            });
        let images = encode::row_images(&schema, values).map_err(|e| SourceError::Query {
            what: format!("the snapshot of {name}"),
            detail: format!("{e}; the table changed while it was read? Restart to read it again"),
        })?;
        let mut rows = Vec::with_capacity(images.len());
        let mut bytes = 0usize;
        for image in images {
            bytes += image.value_bytes() + image.cells.len() * 16 + 64;
            let k = key_of(&schema, &image, &key);
            rows.push((image, k));
        }
        if !rows.is_empty() {
            self.row_bytes = bytes / rows.len();
        }
        let mut next = self.plan.clone();
        let first_of_table = !current.started;
        {
            let tp = &mut next.tables[0];
            tp.started = true;
            tp.rows += rows.len() as u64;
            if let Some(k) = last_key {
                tp.after = Some(k);
            }
        }
        let done = next.tables[0].clone();
        if !more {
            next.tables.remove(0);
        }
        let chunk = Chunk {
            epoch: self.epoch,
            schema,
            rows,
            horizon,
            plan_after: Arc::new(next.clone()),
            first_of_table,
            last_of_table: !more,
            table: done,
        };
        if self.send(ToReader::Chunk(chunk)) {
            self.plan = next;
            if !more {
                self.table = None;
                self.watching = None;
            }
        }
        Ok(())
    }

    /// A table without a usable key: one read view, its rows emitted at
    /// exactly the view's point while the reader waits there.
    pub(super) fn whole(&mut self, current: &TablePlan) -> Result<(), SourceError> {
        let t = self.table.as_ref().expect("open");
        let name = t.name.clone();
        let schema = t.schema.clone();
        let mut sql = t.select.clone();
        let mut params: Vec<Value> = Vec::new();
        if let Some((c, p)) = &t.condition {
            sql.push_str(" WHERE ");
            sql.push_str(c);
            params.extend(p.iter().cloned());
        }
        // Noted before any row goes out: a restart then says that it reads
        // the table again from its beginning.
        if !current.started {
            let mut p = self.plan.clone();
            p.tables[0].started = true;
            self.install(p);
        }
        let (reply, rx) = crossbeam_channel::bounded(1);
        if !self.send(ToReader::Pause {
            epoch: self.epoch,
            reply,
        }) {
            return Ok(());
        }
        let Some(floor) = self.wait(&rx) else {
            return Ok(());
        };
        self.floor = Some(floor);
        let horizon = match self.open_view() {
            Ok(Some(Horizon::At { file, pos })) => Horizon::At { file, pos },
            Ok(None) => {
                self.send(ToReader::Resume { epoch: self.epoch });
                return Ok(());
            }
            Ok(Some(Horizon::Gtids { .. })) => {
                self.send(ToReader::Resume { epoch: self.epoch });
                let _ = self.conn()?.query_drop("ROLLBACK");
                log::warn!(
                    "snapshot: {name} has no primary key or unique NOT NULL key, and this server cannot pair a read view with an exact binlog point (MySQL without binlog_snapshot_file); skipped. Give it a key, or snapshot it on MariaDB/Percona Server"
                );
                self.finish_table_unread();
                return Ok(());
            }
            Err(e) => {
                self.send(ToReader::Resume { epoch: self.epoch });
                return Err(e);
            }
        };
        let (rows_tx, rows_rx) = crossbeam_channel::bounded(2);
        let mut next = self.plan.clone();
        let mut done = next.tables.remove(0);
        done.started = true;
        if !self.send(ToReader::Stream(seam::Streaming {
            epoch: self.epoch,
            schema: schema.clone(),
            horizon,
            rows: rows_rx,
            plan_after: Arc::new(next.clone()),
            table: done,
        })) {
            let _ = self.conn()?.query_drop("ROLLBACK");
            return Ok(());
        }
        let cfg = self.target();
        let shared = self.shared.clone();
        let epoch = self.epoch;
        let conn = self.conn()?;
        let mut n = 0u64;
        let result: Result<(), SourceError> = (|| {
            // Rows go on 256 at a time, their images sharing one buffer.
            let images = |batch: Vec<Vec<Value>>| {
                encode::row_images(&schema, batch).map_err(|e| SourceError::Query {
                    what: format!("the snapshot of {name}"),
                    detail: e,
                })
            };
            let mut batch = Vec::with_capacity(256);
            let mut rows = conn
                .exec_iter(&sql, params)
                .map_err(|e| classify(&cfg, &format!("reading {name}"), e))?;
            for row in rows.by_ref() {
                let row = row.map_err(|e| classify(&cfg, &format!("reading {name}"), e))?;
                batch.push(row.unwrap());
                n += 1;
                if batch.len() == 256 {
                    let b = images(std::mem::replace(&mut batch, Vec::with_capacity(256)))?;
                    if !send_rows(&rows_tx, Streamed::Rows(b), &shared, epoch) {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty()
                && !send_rows(&rows_tx, Streamed::Rows(images(batch)?), &shared, epoch)
            {
                return Ok(());
            }
            send_rows(&rows_tx, Streamed::Done, &shared, epoch);
            Ok(())
        })();
        let _ = conn.query_drop("COMMIT");
        drop(rows_tx);
        result?;
        log::debug!("snapshot: {n} rows of {name} read in one view");
        self.plan = next;
        self.table = None;
        Ok(())
    }
}

/// A key column's value as the next chunk's `WHERE key > ?` must see it.
/// The server returns a BIT as bytes, but compares a BIT column with a
/// bytes parameter as numbers parsed from text (so the boundary row came
/// back in every chunk): a BIT goes back as the integer it is.
pub(super) fn boundary_value(col: &crate::event::ColumnSchema, v: &Value) -> KeyValue {
    match v {
        Value::Bytes(b)
            if crate::source::schema::real_type(col)
                == mysql::consts::ColumnType::MYSQL_TYPE_BIT
                && b.len() <= 8 =>
        {
            KeyValue::UInt(b.iter().fold(0u64, |n, &x| n << 8 | u64::from(x)))
        }
        v => KeyValue::from_value(v),
    }
}

/// A `--where` condition rendered for `schema`'s columns, or why not.
pub(super) fn render_condition(
    text: &str,
    schema: &TableSchema,
) -> Result<(String, Vec<Value>), String> {
    let columns: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let mut params = Vec::new();
    condition::Condition::parse(text)
        .and_then(|c| c.render(&columns, &mut params))
        .map(|sql| (sql, params))
        .map_err(|e| format!("--where refused: {e}"))
}

pub(super) fn send_rows(
    tx: &Sender<Streamed>,
    mut item: Streamed,
    shared: &Shared,
    epoch: u64,
) -> bool {
    loop {
        match tx.send_timeout(item, Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(crossbeam_channel::SendTimeoutError::Timeout(i)) => {
                if shared.stop.requested() || shared.reading.snapshot_epoch() != epoch {
                    return false;
                }
                item = i;
            }
            Err(_) => return false,
        }
    }
}
