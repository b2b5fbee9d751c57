//! The history follows DDL as the server does: each test states a table,
//! a statement, and the definition that must follow.

use super::parse::parse;
use super::*;

fn history() -> History {
    History {
        server_charset: "latin1".into(),
        databases: [("d".to_string(), "utf8mb4".to_string())]
            .into_iter()
            .collect(),
        mariadb: true,
        ..Default::default()
    }
}

fn run(h: &mut History, sql: &str) -> Applied {
    let ddl = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    h.apply(&ddl, "d", &|db, _| db == "d" || db == "e")
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn names(h: &History, t: &str) -> Vec<String> {
    h.table("d", t)
        .unwrap_or_else(|| panic!("no d.{t}"))
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

#[test]
fn create_table_takes_columns_types_charsets_and_the_key() {
    let mut h = history();
    run(
        &mut h,
        "CREATE TABLE `t` (id INT UNSIGNED NOT NULL AUTO_INCREMENT, `we ird` VARCHAR(20) CHARACTER SET latin1 DEFAULT 'x,y', \
         e ENUM('a','it''s') NOT NULL DEFAULT 'a', d DECIMAL(10,2), ts DATETIME(3) DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), \
         j JSON, b TEXT, PRIMARY KEY (id), KEY k (d), CONSTRAINT c CHECK (d > 0)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COMMENT='x'",
    );
    let t = h.table("d", "t").unwrap();
    assert_eq!(names(&h, "t"), ["id", "we ird", "e", "d", "ts", "j", "b"]);
    assert_eq!(t.primary, ["id"]);
    assert!(t.columns[0].unsigned);
    assert_eq!(t.columns[1].charset.as_deref(), Some("latin1"));
    assert_eq!(t.columns[1].length, 20);
    assert_eq!(t.columns[2].labels, ["a", "it's"]);
    assert_eq!((t.columns[3].precision, t.columns[3].scale), (10, 2));
    assert_eq!(t.columns[4].fsp, 3);
    assert!(t.columns[5].json, "MariaDB's JSON is a checked LONGTEXT");
    assert_eq!(
        t.columns[6].charset.as_deref(),
        Some("utf8mb3"),
        "the table's default"
    );
}

#[test]
fn alter_table_moves_adds_drops_and_renames_columns_in_order() {
    let mut h = history();
    run(
        &mut h,
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(5), c INT)",
    );
    run(
        &mut h,
        "ALTER TABLE t ADD COLUMN `we ird` INT AFTER id, DROP COLUMN a",
    );
    assert_eq!(names(&h, "t"), ["id", "we ird", "b", "c"]);
    run(
        &mut h,
        "ALTER TABLE t MODIFY c BIGINT FIRST, CHANGE b bee VARCHAR(9) AFTER c",
    );
    assert_eq!(names(&h, "t"), ["c", "bee", "id", "we ird"]);
    run(
        &mut h,
        "ALTER TABLE d.t ADD f INT FIRST, RENAME COLUMN `we ird` TO w, ADD (x INT, y INT)",
    );
    assert_eq!(names(&h, "t"), ["f", "c", "bee", "id", "w", "x", "y"]);
    run(
        &mut h,
        "alter table t drop primary key, add primary key (c, bee), algorithm=inplace, lock=none",
    );
    assert_eq!(h.table("d", "t").unwrap().primary, ["c", "bee"]);
    run(&mut h, "ALTER TABLE t ADD COLUMN IF NOT EXISTS x INT, DROP COLUMN IF EXISTS nope, ADD INDEX IF NOT EXISTS i (x), ALTER COLUMN x SET DEFAULT 3, ENGINE InnoDB, FORCE");
    assert_eq!(names(&h, "t").len(), 7);
    run(&mut h, "ALTER TABLE t RENAME TO e.t2");
    assert!(h.table("d", "t").is_none());
    assert!(h.table("e", "t2").is_some());
}

#[test]
fn renames_follow_tables_across_databases_and_out_of_sight() {
    let mut h = history();
    run(&mut h, "CREATE TABLE t (id INT)");
    run(&mut h, "CREATE TABLE _t_new LIKE t");
    run(&mut h, "ALTER TABLE _t_new ADD c INT");
    let a = run(&mut h, "RENAME TABLE t TO _t_old, _t_new TO t");
    assert_eq!(names(&h, "t"), ["id", "c"]);
    assert!(a.changed.contains(&("d".into(), "t".into())));
    run(&mut h, "DROP TABLE IF EXISTS _t_old, nope");
    assert!(h.table("d", "_t_old").is_none());
    // Into a tracked name from a database the history does not follow.
    let a = run(&mut h, "RENAME TABLE other.x TO d.x");
    assert_eq!(a.unknown.len(), 1, "{a:?}");
    // Out of sight, with clauses after the rename: nothing more to follow.
    run(&mut h, "ALTER TABLE t RENAME TO other.y, ADD z INT");
    assert!(h.table("d", "t").is_none());
}

#[test]
fn convert_to_a_wider_charset_grows_text_types() {
    let mut h = history();
    run(
        &mut h,
        "CREATE TABLE t (a TEXT, b VARCHAR(10), n INT) CHARSET latin1",
    );
    run(
        &mut h,
        "ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    );
    let t = h.table("d", "t").unwrap();
    assert_eq!(t.columns[0].data_type, "mediumtext");
    assert_eq!(t.columns[1].charset.as_deref(), Some("utf8mb4"));
    assert_eq!(t.columns[2].charset, None);
}

#[test]
fn statements_that_change_no_row_shape_change_nothing() {
    let mut h = history();
    run(&mut h, "CREATE TABLE t (id INT)");
    let before = h.clone();
    for sql in [
        "CREATE INDEX i ON t (id)",
        "DROP INDEX i ON t",
        "TRUNCATE TABLE t",
        "CREATE TEMPORARY TABLE tmp (x INT)",
        "CREATE DEFINER=`root`@`%` VIEW v AS SELECT 1",
        "GRANT SELECT ON *.* TO u",
        "ALTER TABLE t COMMENT 'x', ROW_FORMAT=DYNAMIC, PARTITION BY HASH(id) PARTITIONS 4",
        "/*!40101 SET NAMES utf8 */",
    ] {
        run(&mut h, sql);
    }
    assert_eq!(h, before);
}

#[test]
fn what_cannot_be_read_is_an_error_not_a_guess() {
    for sql in [
        "ALTER TABLE t ADD COLUMN x FROB",
        "ALTER TABLE t SPLURGE",
        "CREATE TABLE t (a INT",
        "ALTER TABLE t ADD COLUMN 'x' INT)",
    ] {
        assert!(parse(sql).is_err(), "{sql} must not parse");
    }
    let mut h = history();
    run(&mut h, "CREATE TABLE t (id INT)");
    let ddl = parse("ALTER TABLE t DROP COLUMN missing").unwrap();
    assert!(h.apply(&ddl, "d", &|_, _| true).is_err());
}

#[test]
fn derived_schema_has_the_binlog_types_and_metadata() {
    let mut h = history();
    run(&mut h, "CREATE TABLE t (id BIGINT UNSIGNED, v VARCHAR(10), d DECIMAL(8,3), t TIME(2), e SET('a','b'))");
    let s = h.schema("d", "t").unwrap();
    use mysql::consts::ColumnType as T;
    assert_eq!(s.columns[0].col_type, T::MYSQL_TYPE_LONGLONG);
    assert_eq!(s.columns[1].col_type, T::MYSQL_TYPE_VARCHAR);
    assert_eq!(s.columns[1].meta, vec![40, 0], "10 utf8mb4 characters");
    assert_eq!(s.columns[2].meta, vec![8, 3]);
    assert_eq!(s.columns[3].meta, vec![2]);
    assert_eq!(real_type(&s.columns[4]), T::MYSQL_TYPE_SET);
    assert_eq!(s.names_from, NameSource::History);
}

#[test]
fn real_world_ddl_reads_as_the_servers_run_it() {
    let mut h = history();
    // mysqldump --no-data, with its versioned comments.
    run(
        &mut h,
        "/*!40101 SET @saved_cs_client     = @@character_set_client */",
    );
    run(
        &mut h,
        "CREATE TABLE `orders` (\n  `id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,\n  `note` varchar(255) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci DEFAULT NULL COMMENT 'it''s',\n  `total` decimal(12,2) NOT NULL DEFAULT '0.00',\n  `placed` timestamp(3) NOT NULL DEFAULT current_timestamp(3) ON UPDATE current_timestamp(3),\n  PRIMARY KEY (`id`),\n  KEY `placed` (`placed`) /*!80000 INVISIBLE */\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci /*!50100 PARTITION BY HASH (`id`) PARTITIONS 4 */",
    );
    assert_eq!(names(&h, "orders"), ["id", "note", "total", "placed"]);
    // MySQL 8: invisible columns, functional indexes, CHECK, ENCRYPTION.
    run(
        &mut h,
        "CREATE TABLE m8 (a INT, b INT INVISIBLE, j JSON, INDEX ((a + b)), CONSTRAINT ck CHECK (a > 0) NOT ENFORCED) ENCRYPTION='N'",
    );
    assert_eq!(names(&h, "m8"), ["a", "b", "j"]);
    run(
        &mut h,
        "ALTER TABLE m8 ALTER COLUMN b SET VISIBLE, ADD COLUMN c INT AFTER a, ALGORITHM=INSTANT",
    );
    assert_eq!(names(&h, "m8"), ["a", "c", "b", "j"]);
    // gh-ost: the ghost table, altered, then the cut-over rename.
    run(
        &mut h,
        "create /* gh-ost */ table `d`.`_orders_gho` like `d`.`orders`",
    );
    run(
        &mut h,
        "alter /* gh-ost */ table `d`.`_orders_gho` add column `status` tinyint not null default 0",
    );
    run(&mut h, "create /* gh-ost */ table `d`.`_orders_del` (id int auto_increment primary key) engine=InnoDB comment='ghost-cut-over-sentry'");
    run(
        &mut h,
        "drop /* gh-ost */ table if exists `d`.`_orders_del`",
    );
    run(&mut h, "rename /* gh-ost */ table `d`.`orders` to `d`.`_orders_del`, `d`.`_orders_gho` to `d`.`orders`");
    assert_eq!(
        names(&h, "orders"),
        ["id", "note", "total", "placed", "status"]
    );
    // pt-online-schema-change: _t_new, the ALTER, the atomic swap.
    run(&mut h, "CREATE TABLE `d`.`_orders_new` LIKE `d`.`orders`");
    run(
        &mut h,
        "ALTER TABLE `d`.`_orders_new` MODIFY note TEXT, ADD COLUMN x INT FIRST",
    );
    run(
        &mut h,
        "RENAME TABLE `d`.`orders` TO `d`.`_orders_old`, `d`.`_orders_new` TO `d`.`orders`",
    );
    run(
        &mut h,
        "DROP TABLE IF EXISTS `d`.`_orders_old` /* generated by server */",
    );
    assert_eq!(
        names(&h, "orders"),
        ["x", "id", "note", "total", "placed", "status"]
    );
    // MariaDB: IF [NOT] EXISTS on columns, WAIT n, CREATE OR REPLACE.
    run(&mut h, "ALTER TABLE orders WAIT 5 ADD COLUMN IF NOT EXISTS x INT, DROP COLUMN IF EXISTS gone, CHANGE COLUMN IF EXISTS status state TINYINT");
    assert_eq!(names(&h, "orders")[5], "state");
    run(
        &mut h,
        "CREATE OR REPLACE TABLE orders (id INT PRIMARY KEY)",
    );
    assert_eq!(names(&h, "orders"), ["id"]);
    run(&mut h, "RENAME TABLE orders WAIT 2 TO orders2");
    assert!(h.table("d", "orders2").is_some());
    // System versioning adds hidden columns: the table is unknown.
    let a = run(&mut h, "CREATE TABLE sv (id INT) WITH SYSTEM VERSIONING");
    assert_eq!(a.unknown.len(), 1);
    // A database's default charset is what a new table takes.
    run(&mut h, "CREATE DATABASE e CHARACTER SET latin1");
    run(&mut h, "CREATE TABLE e.t (v VARCHAR(3))");
    assert_eq!(
        h.table("e", "t").unwrap().columns[0].charset.as_deref(),
        Some("latin1")
    );
    run(&mut h, "DROP DATABASE e");
    assert!(h.table("e", "t").is_none());
}

#[test]
fn a_mysqldump_schema_file_gives_the_first_definitions() {
    let dump = "-- MySQL dump 10.13\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\
        CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET latin1 */;\n\
        USE `shop`;\nDROP TABLE IF EXISTS `t`;\n/*!40101 SET character_set_client = utf8 */;\n\
        CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `s` varchar(5) DEFAULT 'a;b',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n\
        DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.s = 'x'; END */;;\nDELIMITER ;\n";
    let h = History::from_sql(dump).unwrap();
    let t = h.table("shop", "t").unwrap();
    assert_eq!(t.columns.len(), 2);
    assert_eq!(t.columns[1].charset.as_deref(), Some("latin1"));
    assert_eq!(t.primary, ["id"]);
    assert!(History::from_sql("CREATE TABLE x (a FROB);")
        .unwrap_err()
        .starts_with("line 1:"));
}
