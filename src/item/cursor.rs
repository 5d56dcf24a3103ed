//! A cursor over JSON text for the hand-written readers on the hot path: the sizing walk of an
//! item ([`super::sizer`]) and the GetRecords page ([`crate::source::streams::page`]).
//!
//! Why by hand: serde_json capturing a value as raw text scans every string of it once, and the
//! reader that checks the item's shape then scans it again. The cursor checks JSON's syntax itself
//! (strings with their escapes and without raw control characters, numbers, literals, nesting up
//! to serde_json's limit) so a page is read in one pass; the readers check the shape they expect
//! on top.

/// How deep maps and lists may nest: serde_json's limit, so a page either reader refuses is the
/// same page.
const MAX_DEPTH: u32 = 128;

pub(crate) struct Cursor<'a> {
    pub(crate) text: &'a str,
    b: &'a [u8],
    pub(crate) i: usize,
    depth: u32,
}

/// A string as the text spells it, its decoded length in bytes, and whether it holds escapes.
pub(crate) struct Str<'a> {
    pub(crate) raw: &'a str,
    pub(crate) len: usize,
    pub(crate) escaped: bool,
}

impl<'a> Str<'a> {
    /// The string decoded: borrowed from the text unless it holds escapes.
    #[inline]
    pub(crate) fn decoded(&self) -> Result<std::borrow::Cow<'a, str>, String> {
        match self.escaped {
            false => Ok(std::borrow::Cow::Borrowed(self.raw)),
            true => self.unescaped().map(std::borrow::Cow::Owned),
        }
    }

    #[cold]
    fn unescaped(&self) -> Result<String, String> {
        serde_json::from_str(&format!("\"{}\"", self.raw)).map_err(|e| e.to_string())
    }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            b: text.as_bytes(),
            i: 0,
            depth: 0,
        }
    }

    #[inline]
    pub(crate) fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    #[inline]
    pub(crate) fn ws(&mut self) {
        // Pages are mostly compact: most calls find no whitespace.
        while matches!(self.b.get(self.i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(crate) fn eat(&mut self, c: u8) -> Result<(), String> {
        // Compact pages: the expected byte is usually right there.
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            return Ok(());
        }
        self.eat_slow(c)
    }

    #[cold]
    fn eat_slow(&mut self, c: u8) -> Result<(), String> {
        if self.peek() != Some(c) {
            return Err(self.error(&format!("expected '{}'", c as char)));
        }
        self.i += 1;
        Ok(())
    }

    /// Only whitespace is left.
    pub(crate) fn end(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// Opens a map or list: `true` if it has entries, `false` if it was empty (and is closed).
    #[inline]
    pub(crate) fn open(&mut self, start: u8, end: u8) -> Result<bool, String> {
        self.eat(start)?;
        if self.peek() == Some(end) {
            self.i += 1;
            return Ok(false);
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        Ok(true)
    }

    /// After an entry of a map or list opened with entries: `true` for another, `false` at the
    /// closing `end`.
    #[inline]
    pub(crate) fn more(&mut self, end: u8) -> Result<bool, String> {
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(c) if c == end => {
                self.i += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(self.error("expected ',' or the end of the collection")),
        }
    }

    /// Closes a map or list opened with entries at its `end`, with nothing more in it.
    #[inline]
    pub(crate) fn close(&mut self, end: u8) -> Result<(), String> {
        self.eat(end)?;
        self.depth -= 1;
        Ok(())
    }

    /// A map's entries, each handed to `each` with its name and the cursor at its value, which
    /// `each` must read. (A name is decoded only where it is compared: serde_json, skipping a map,
    /// takes names it could not decode.)
    pub(crate) fn entries(
        &mut self,
        mut each: impl FnMut(&mut Self, Str<'a>) -> Result<(), String>,
    ) -> Result<(), String> {
        if !self.open(b'{', b'}')? {
            return Ok(());
        }
        loop {
            let name = self.string()?;
            self.eat(b':')?;
            each(self, name)?;
            if !self.more(b'}')? {
                return Ok(());
            }
        }
    }

    /// A list's entries, each read by `each` from the cursor at it.
    pub(crate) fn items(&mut self, mut each: impl FnMut(&mut Self) -> Result<(), String>) -> Result<(), String> {
        if self.open(b'[', b']')? {
            loop {
                each(self)?;
                if !self.more(b']')? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The string at the cursor, checked: escapes, and no raw control characters.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Result<Str<'a>, String> {
        self.eat(b'"')?;
        let start = self.i;
        // Inlined where strings are read: names, type descriptors and most values end within a
        // few words without an escape, and a call per string was a good part of its cost.
        if let Some(run) = stop_within_24(&self.b[start..])
            && self.b[start + run] == b'"'
        {
            self.i = start + run + 1;
            let raw = &self.text[start..start + run];
            return Ok(Str {
                raw,
                len: run,
                escaped: false,
            });
        }
        self.string_rest(start)
    }

    /// The rest of [`Self::string`]: long strings, escapes, and errors.
    #[inline(never)]
    fn string_rest(&mut self, start: usize) -> Result<Str<'a>, String> {
        let (mut len, mut escaped) = (0, false);
        loop {
            let rest = &self.b[self.i..];
            // Names, type descriptors and most values are short: a word at a time finds their
            // end before a SIMD search would have started.
            let run = match stop_within_24(rest) {
                Some(run) => run,
                None => {
                    let run = memchr::memchr2(b'"', b'\\', rest).ok_or_else(|| self.error("unterminated string"))?;
                    // A fold the compiler turns into SIMD minimums.
                    if rest[..run].iter().fold(0xff, |m, &c| m.min(c)) < 0x20 {
                        return Err(self.error("a control character in a string"));
                    }
                    run
                }
            };
            if rest[run] < 0x20 {
                self.i += run;
                return Err(self.error("a control character in a string"));
            }
            len += run;
            self.i += run;
            if self.b[self.i] == b'"' {
                let raw = &self.text[start..self.i];
                self.i += 1;
                return Ok(Str { raw, len, escaped });
            }
            escaped = true;
            len += self.escape()?;
        }
    }

    /// Steps over the escape at the cursor (a backslash); the bytes it decodes to.
    fn escape(&mut self) -> Result<usize, String> {
        let hex = |w: &Self, at: usize| {
            w.text
                .get(at..at + 4)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| w.error("a bad \\u escape"))
        };
        match self.b.get(self.i + 1) {
            Some(b'u') => {
                let cp = hex(self, self.i + 2)?;
                self.i += 6;
                // A surrogate pair is one character of four bytes.
                if (0xD800..0xDC00).contains(&cp) && self.b[self.i..].starts_with(b"\\u") {
                    let low = hex(self, self.i + 2)?;
                    if (0xDC00..0xE000).contains(&low) {
                        self.i += 6;
                        return Ok(4);
                    }
                }
                Ok(char::from_u32(cp).map_or(3, char::len_utf8))
            }
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 2;
                Ok(1)
            }
            _ => Err(self.error("a bad escape")),
        }
    }

    /// `true` or `false`; the value read.
    pub(crate) fn boolean(&mut self) -> Result<bool, String> {
        if self.literal("true") {
            return Ok(true);
        }
        if self.literal("false") {
            return Ok(false);
        }
        Err(self.error("expected true or false"))
    }

    /// Steps over `word` if the text continues with it.
    #[inline]
    pub(crate) fn literal(&mut self, word: &str) -> bool {
        self.ws();
        let found = self.b[self.i..].starts_with(word.as_bytes());
        if found {
            self.i += word.len();
        }
        found
    }

    /// A JSON number, as the text spells it.
    pub(crate) fn number(&mut self) -> Result<&'a str, String> {
        self.ws();
        let start = self.i;
        let digits = |w: &mut Self| {
            let from = w.i;
            while w.b.get(w.i).is_some_and(u8::is_ascii_digit) {
                w.i += 1;
            }
            w.i > from
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let leading_zero = self.b.get(self.i) == Some(&b'0');
        if !digits(self) || (leading_zero && self.i - start > 1 + usize::from(self.b[start] == b'-')) {
            return Err(self.error("a bad number"));
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.error("a bad number"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.error("a bad number"));
            }
        }
        Ok(&self.text[start..self.i])
    }

    /// Steps over any JSON value, checking it.
    pub(crate) fn skip(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.entries(|w, _| w.skip()),
            Some(b'[') => self.items(Self::skip),
            Some(b't' | b'f') => self.boolean().map(drop),
            Some(b'n') if self.literal("null") => Ok(()),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => Err(self.error("expected a value")),
        }
    }

    /// `null` (stepped over) or another value (left for the caller).
    #[inline]
    pub(crate) fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal("null")
    }
}

/// Where the first quote, backslash or control character is in the first 24 bytes of `rest`,
/// eight bytes at a time.
#[inline]
fn stop_within_24(rest: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte below `n` (n <= 0x80). A borrow can mark bytes above a marked one
    // too, never below it, so the lowest mark is exact.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * n as u64) & !w & HIGH;
    let mut at = 0;
    while at < 24 {
        let Some(word) = rest.get(at..at + 8) else {
            let mut tail = rest[at..].iter().take(24 - at);
            return tail.position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| at + p);
        };
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let hit = below(w ^ (ONES * b'"' as u64), 1) | below(w ^ (ONES * b'\\' as u64), 1) | below(w, 0x20);
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    None
}

#[cfg(test)]
#[path = "cursor_tests.rs"]
mod tests;
