//! Facts of a column that every stage reads from its table-map metadata:
//! its real type, a CHAR column's length, a DECIMAL's size. Plain
//! functions of [`ColumnSchema`], so the decoder and the encoders share one
//! reading of the metadata.

use mysql::consts::ColumnType;

use super::ColumnSchema;

/// The column's type, ENUM and SET told apart from the CHAR type the
/// binlog gives them (their real type is the first byte of the metadata).
pub fn real_type(col: &ColumnSchema) -> ColumnType {
    if col.col_type == ColumnType::MYSQL_TYPE_STRING {
        if let Some(&b) = col.meta.first() {
            if b == ColumnType::MYSQL_TYPE_ENUM as u8 {
                return ColumnType::MYSQL_TYPE_ENUM;
            }
            if b == ColumnType::MYSQL_TYPE_SET as u8 {
                return ColumnType::MYSQL_TYPE_SET;
            }
        }
    }
    col.col_type
}

/// Bytes of a packed DECIMAL(precision, scale), as MySQL's decimal_bin_size.
pub fn decimal_size(precision: usize, scale: usize) -> usize {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let intg = precision.saturating_sub(scale);
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (scale / 9) * 4 + DIG2BYTES[scale % 9]
}

/// For CHAR-like columns (MYSQL_TYPE_STRING) the table map packs the real
/// type and the maximum byte length into two bytes.
pub fn string_max_len(meta: &[u8]) -> usize {
    match meta {
        [b0, b1, ..] => {
            let (b0, b1) = (*b0 as usize, *b1 as usize);
            if b0 & 0x30 != 0x30 {
                b1 | (((b0 & 0x30) ^ 0x30) << 4)
            } else {
                b1
            }
        }
        _ => 0,
    }
}
