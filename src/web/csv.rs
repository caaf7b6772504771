//! CSV exports of the console (the audit log, the transactions): one record per call.

/// One CSV record (RFC 4180, written by the `csv` crate), each cell safe from formula
/// injection: a cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, CR) is
/// prefixed with `'`.
pub fn line(cells: &[&str]) -> String {
    let mut w = ::csv::WriterBuilder::new().from_writer(vec![]);
    let safe: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{c}")
            } else {
                c.to_string()
            }
        })
        .collect();
    let _ = w.write_record(&safe);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn cells_are_quoted_and_formulas_neutralized() {
        assert_eq!(
            line(&["a", "b,c", "say \"hi\""]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
        assert_eq!(
            line(&["=1+1", "-2", "@x", "+3", "ok"]),
            "'=1+1,'-2,'@x,'+3,ok\n"
        );
    }
}
