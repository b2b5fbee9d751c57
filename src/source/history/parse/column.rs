//! Column definitions: the type, its arguments and modifiers, and the
//! attributes that follow it.

use super::*;

impl<'a> P<'a> {
    /// `name type [attributes]`.
    pub(super) fn column(&mut self) -> Result<ColumnSpec, String> {
        let name = self.ident()?;
        self.column_body(name)
    }

    pub(super) fn column_body(&mut self, name: String) -> Result<ColumnSpec, String> {
        let mut c = self.data_type(name)?;
        // Attributes, to the `,` or `)` that ends the definition.
        loop {
            match self.peek() {
                None | Some(Tok::Sym(',')) | Some(Tok::Sym(')')) | Some(Tok::Sym(';')) => break,
                Some(Tok::Sym('(')) => self.skip_parens()?,
                Some(t) if t.is("FIRST") || t.is("AFTER") => break,
                Some(t) if t.is("NOT") => {
                    self.at += 1;
                    if self.eat_kw("NULL") {
                        c.nullable = false;
                    }
                }
                Some(t) if t.is("NULL") => {
                    self.at += 1;
                    c.nullable = true;
                }
                Some(t)
                    if t.is("DEFAULT")
                        || t.is("COMMENT")
                        || t.is("ON")
                        || t.is("SRID")
                        || t.is("COLUMN_FORMAT")
                        || t.is("STORAGE") =>
                {
                    self.default_or_value()?;
                }
                Some(t) if t.is("PRIMARY") => {
                    self.at += 1;
                    self.eat_kw("KEY");
                    c.primary = true;
                    c.nullable = false;
                }
                Some(t) if t.is("UNIQUE") => {
                    self.at += 1;
                    self.eat_kw("KEY");
                }
                Some(t) if t.is("KEY") => {
                    // A bare KEY on a column is PRIMARY KEY.
                    self.at += 1;
                    c.primary = true;
                    c.nullable = false;
                }
                Some(t) if t.is("CHARACTER") || t.is("CHARSET") => {
                    self.at += 1;
                    self.eat_kw("SET");
                    self.eat_sym('=');
                    c.charset = Some(self.ident()?.to_ascii_lowercase());
                }
                Some(t) if t.is("COLLATE") => {
                    self.at += 1;
                    self.eat_sym('=');
                    c.collate = Some(self.ident()?.to_ascii_lowercase());
                }
                Some(t) if t.is("REFERENCES") => {
                    // Runs to the end of the definition.
                    self.skip_clause()?;
                }
                Some(_) => self.at += 1,
            }
        }
        Ok(c)
    }

    /// DEFAULT value (a literal, a signed number, a function call or an
    /// expression in parentheses), COMMENT 'x', ON UPDATE f(), SRID n, ...
    pub(super) fn default_or_value(&mut self) -> Result<(), String> {
        let on = self.at_kw("ON");
        self.at += 1;
        if on {
            self.eat_kw("UPDATE");
        }
        self.eat_sym('=');
        // A charset introducer (_utf8mb4'x'), a sign, then the value.
        if matches!(self.peek(), Some(Tok::Word(w)) if w.starts_with('_'))
            && matches!(self.peek_at(1), Some(Tok::Str(_)))
        {
            self.at += 1;
        }
        while self.eat_sym('-') || self.eat_sym('+') {}
        match self.next() {
            Some(Tok::Word(_)) => {
                if self.at_sym('(') {
                    self.skip_parens()?;
                }
            }
            Some(Tok::Sym('(')) => {
                self.at -= 1;
                self.skip_parens()?;
            }
            Some(_) => {}
            None => return Err("a value is missing at the end".into()),
        }
        Ok(())
    }

    /// The type and its modifiers (UNSIGNED, ZEROFILL, BINARY, charset).
    pub(super) fn data_type(&mut self, name: String) -> Result<ColumnSpec, String> {
        let word = match self.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            Some(t) => {
                return Err(format!(
                    "expected the type of column {name}, found {}",
                    shown(t)
                ))
            }
            None => return Err(format!("column {name} has no type")),
        };
        let mut charset = None;
        let mut extra_unsigned = false;
        let mut data_type = match word.as_str() {
            "integer" | "int4" => "int".to_string(),
            "int1" | "bool" | "boolean" => "tinyint".to_string(),
            "int2" => "smallint".to_string(),
            "int3" | "middleint" => "mediumint".to_string(),
            "int8" => "bigint".to_string(),
            "dec" | "numeric" | "fixed" => "decimal".to_string(),
            "real" | "float8" => "double".to_string(),
            "float4" => "float".to_string(),
            "double" => {
                self.eat_kw("PRECISION");
                "double".to_string()
            }
            "serial" => {
                extra_unsigned = true;
                "bigint".to_string()
            }
            "national" | "nchar" | "nvarchar" => {
                charset = Some("utf8mb3".to_string());
                match word.as_str() {
                    "nvarchar" => "varchar".to_string(),
                    "nchar" if self.eat_kw("VARCHAR") || self.eat_kw("VARYING") => {
                        "varchar".to_string()
                    }
                    "nchar" => "char".to_string(),
                    _ => {
                        let t = self.ident()?.to_ascii_lowercase();
                        if (t == "char" || t == "character") && self.eat_kw("VARYING")
                            || t == "varchar"
                        {
                            "varchar".to_string()
                        } else {
                            "char".to_string()
                        }
                    }
                }
            }
            "character" | "char" => {
                if self.eat_kw("VARYING") {
                    "varchar".to_string()
                } else {
                    "char".to_string()
                }
            }
            "long" => {
                if self.eat_kw("VARBINARY") {
                    "mediumblob".to_string()
                } else {
                    self.eat_kw("VARCHAR");
                    "mediumtext".to_string()
                }
            }
            other => other.to_string(),
        };
        if !type_word(&data_type) {
            return Err(format!(
                "column {name} has type `{word}`, which binlog2kafka does not know"
            ));
        }
        let mut args = Vec::new();
        if self.eat_sym('(') {
            loop {
                match self.next() {
                    Some(Tok::Num(n)) => args.push(n.clone()),
                    Some(Tok::Str(s)) => args.push(s.clone()),
                    // _utf8mb4'label' or X'..' in a label list.
                    Some(Tok::Word(w))
                        if matches!(self.peek(), Some(Tok::Str(_)))
                            && (w.starts_with('_')
                                || w.eq_ignore_ascii_case("x")
                                || w.eq_ignore_ascii_case("b")) =>
                    {
                        if let Some(Tok::Str(s)) = self.next() {
                            args.push(s.clone());
                        }
                    }
                    Some(t) => {
                        return Err(format!(
                            "column {name}: unexpected {} in its type",
                            shown(t)
                        ))
                    }
                    None => return Err(format!("column {name}: its type does not end")),
                }
                if self.eat_sym(')') {
                    break;
                }
                self.expect_sym(',')?;
            }
        }
        let mut c = ColumnSpec {
            name,
            data_type: String::new(),
            args,
            unsigned: extra_unsigned,
            charset,
            collate: None,
            nullable: !extra_unsigned,
            primary: false,
        };
        loop {
            if self.eat_kw("UNSIGNED") {
                c.unsigned = true;
            } else if self.eat_kw("SIGNED") || self.eat_kw("ZEROFILL") {
                // ZEROFILL implies UNSIGNED.
                if self.t[self.at - 1].is("ZEROFILL") {
                    c.unsigned = true;
                }
            } else if self.eat_kw("BINARY") {
                // CHAR(n) BINARY: the charset's binary collation.
                c.collate.get_or_insert_with(|| "binary".into());
            } else if self.eat_kw("ASCII") {
                c.charset = Some("latin1".into());
            } else if self.eat_kw("UNICODE") {
                c.charset = Some("ucs2".into());
            } else if self.eat_kw("BYTE") {
                data_type = match data_type.as_str() {
                    "char" => "binary".into(),
                    "varchar" => "varbinary".into(),
                    other => other.into(),
                };
            } else {
                break;
            }
        }
        c.data_type = data_type;
        Ok(c)
    }
}

/// The type names binlog2kafka knows (after aliases are resolved).
pub fn type_word(w: &str) -> bool {
    const TYPES: &[&str] = &[
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "bool",
        "boolean",
        "int1",
        "int2",
        "int3",
        "int4",
        "int8",
        "middleint",
        "serial",
        "decimal",
        "dec",
        "numeric",
        "fixed",
        "float",
        "float4",
        "float8",
        "double",
        "real",
        "bit",
        "date",
        "datetime",
        "timestamp",
        "time",
        "year",
        "char",
        "character",
        "varchar",
        "nchar",
        "nvarchar",
        "national",
        "binary",
        "varbinary",
        "tinytext",
        "text",
        "mediumtext",
        "longtext",
        "long",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "enum",
        "set",
        "json",
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
        "inet6",
        "inet4",
        "uuid",
    ];
    TYPES.iter().any(|t| w.eq_ignore_ascii_case(t))
}
