//! Readers already on a source stream (Lambda event source mappings): DynamoDB serves at most
//! two readers per shard at once (AWS advises one on a global table) before throttling them, and
//! ferry is one more.

/// The `ferry plan` warning for a stream with `consumers` mappings on it, if any.
pub fn warning(consumers: usize, global: bool) -> Option<String> {
    if consumers == 0 {
        return None;
    }
    let (limit, what) = if global {
        (1, "1 reader per shard on a global table")
    } else {
        (2, "2 readers per shard")
    };
    let readers = consumers + 1;
    let effect = if readers > limit {
        "ferry's reads and theirs will be throttled (replay slows down)"
    } else {
        "no other reader can be added while ferry runs"
    };
    Some(format!(
        "source stream already has {consumers} Lambda consumer(s) (event source mappings): with ferry that is \
         {readers} reader(s), and DynamoDB allows {what}; {effect}. Consider pausing those triggers during the \
         migration."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_stream_consumers_are_warned_about_with_the_reader_limit() {
        assert_eq!(warning(0, false), None);
        let one = warning(1, false).unwrap();
        assert!(
            one.starts_with("source stream already has 1 Lambda consumer(s)"),
            "{one}"
        );
        assert!(
            one.contains("2 reader(s), and DynamoDB allows 2 readers per shard; no other reader"),
            "{one}"
        );
        let two = warning(2, false).unwrap();
        assert!(
            two.contains("3 reader(s)") && two.contains("will be throttled"),
            "{two}"
        );
        let global = warning(1, true).unwrap();
        assert!(
            global.contains("allows 1 reader per shard on a global table") && global.contains("throttled"),
            "{global}"
        );
    }
}
