//! ALTER TABLE: its clauses, in order, as what they change.

use super::*;

impl<'a> P<'a> {
    pub(super) fn alter_table(&mut self) -> Result<Ddl, String> {
        self.if_exists();
        let name = self.name()?;
        self.wait();
        let mut ops = Vec::new();
        while self.peek().is_some() && !self.at_sym(';') {
            self.alter_op(&mut ops)?;
            if !self.eat_sym(',') {
                // Partitioning may follow without a comma.
                if self.at_kw("PARTITION") || self.at_kw("REMOVE") {
                    self.at = self.t.len();
                }
                break;
            }
        }
        Ok(Ddl::AlterTable { name, ops })
    }

    pub(super) fn place(&mut self) -> Result<Option<Place>, String> {
        if self.eat_kw("FIRST") {
            Ok(Some(Place::First))
        } else if self.eat_kw("AFTER") {
            Ok(Some(Place::After(self.ident()?)))
        } else {
            Ok(None)
        }
    }

    pub(super) fn alter_op(&mut self, ops: &mut Vec<AlterOp>) -> Result<(), String> {
        if self.eat_kw("ADD") {
            if self.eat_kws(&["SYSTEM", "VERSIONING"]) {
                ops.push(AlterOp::Unmodelled("ADD SYSTEM VERSIONING".into()));
                return Ok(());
            }
            let column_kw = self.eat_kw("COLUMN");
            let if_not_exists = self.if_not_exists();
            if self.eat_sym('(') {
                loop {
                    let column = self.column()?;
                    ops.push(AlterOp::Add {
                        column,
                        place: None,
                        if_not_exists,
                    });
                    if self.eat_sym(')') {
                        return Ok(());
                    }
                    self.expect_sym(',')?;
                }
            }
            if column_kw || self.starts_column() {
                let column = self.column()?;
                let place = self.place()?;
                ops.push(AlterOp::Add {
                    column,
                    place,
                    if_not_exists,
                });
                return Ok(());
            }
            if let Some(pk) = self.key_clause()? {
                ops.push(AlterOp::AddPrimaryKey(pk));
            }
            return Ok(());
        }
        if self.eat_kw("DROP") {
            if self.eat_kws(&["PRIMARY", "KEY"]) {
                ops.push(AlterOp::DropPrimaryKey);
                return Ok(());
            }
            if self.eat_kws(&["SYSTEM", "VERSIONING"]) {
                ops.push(AlterOp::Unmodelled("DROP SYSTEM VERSIONING".into()));
                return Ok(());
            }
            let other = [
                "INDEX",
                "KEY",
                "FOREIGN",
                "CHECK",
                "CONSTRAINT",
                "PARTITION",
                "PERIOD",
                "DEFAULT",
            ];
            if other.iter().any(|k| self.at_kw(k)) {
                return self.skip_clause();
            }
            self.eat_kw("COLUMN");
            let if_exists = self.if_exists();
            let name = self.ident()?;
            self.eat_kw("RESTRICT");
            self.eat_kw("CASCADE");
            ops.push(AlterOp::Drop { name, if_exists });
            return Ok(());
        }
        if self.eat_kw("MODIFY") {
            self.eat_kw("COLUMN");
            let if_exists = self.if_exists();
            let column = self.column()?;
            let place = self.place()?;
            ops.push(AlterOp::Redefine {
                old: column.name.clone(),
                column,
                place,
                if_exists,
            });
            return Ok(());
        }
        if self.eat_kw("CHANGE") {
            self.eat_kw("COLUMN");
            let if_exists = self.if_exists();
            let old = self.ident()?;
            let column = self.column()?;
            let place = self.place()?;
            ops.push(AlterOp::Redefine {
                old,
                column,
                place,
                if_exists,
            });
            return Ok(());
        }
        if self.eat_kw("RENAME") {
            if self.eat_kw("COLUMN") {
                let old = self.ident()?;
                self.expect_kw("TO")?;
                ops.push(AlterOp::RenameColumn {
                    old,
                    new: self.ident()?,
                });
                return Ok(());
            }
            if self.eat_kw("INDEX") || self.eat_kw("KEY") {
                return self.skip_clause();
            }
            if !self.eat_kw("TO") {
                self.eat_kw("AS");
            }
            ops.push(AlterOp::RenameTo(self.name()?));
            return Ok(());
        }
        if self.eat_kw("ALTER") {
            // ALTER [COLUMN] c SET/DROP DEFAULT, SET [IN]VISIBLE; ALTER
            // INDEX/CHECK/CONSTRAINT: no row shape.
            return self.skip_clause();
        }
        if self.eat_kw("CONVERT") {
            self.expect_kw("TO")?;
            let (charset, collate) = self.charset_clause()?;
            ops.push(AlterOp::Convert { charset, collate });
            return Ok(());
        }
        if self.at_kw("DEFAULT")
            || self.at_kw("CHARACTER")
            || self.at_kw("CHARSET")
            || self.at_kw("COLLATE")
        {
            if self.at_kw("DEFAULT")
                && !matches!(self.peek_at(1), Some(t) if t.is("CHARACTER") || t.is("CHARSET") || t.is("COLLATE"))
            {
                return Err(self.unexpected("CHARACTER SET or COLLATE after DEFAULT"));
            }
            self.eat_kw("DEFAULT");
            let (charset, collate) = self.charset_clause()?;
            ops.push(AlterOp::DefaultCharset { charset, collate });
            return Ok(());
        }
        let (cs, co) = self.table_option()?;
        if cs.is_some() || co.is_some() {
            ops.push(AlterOp::DefaultCharset {
                charset: cs,
                collate: co,
            });
        }
        Ok(())
    }

    /// `CHARACTER SET x [COLLATE y]`, `CHARSET x`, `COLLATE y`, with `=`.
    pub(super) fn charset_clause(&mut self) -> Result<(Option<String>, Option<String>), String> {
        let (mut charset, mut collate) = (None, None);
        while let Some((cs, co)) = self.charset_item()? {
            charset = cs.or(charset);
            collate = co.or(collate);
        }
        if charset.is_none() && collate.is_none() {
            return Err(self.unexpected("CHARACTER SET or COLLATE"));
        }
        Ok((charset, collate))
    }
}
