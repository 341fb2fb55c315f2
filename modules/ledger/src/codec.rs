//! The byte layout of the ledger's small records in its own table (open items, tax rows,
//! draft lines, fiscal years, stock positions): integers big endian, counts as `u32`,
//! strings UTF-8 behind a `u16` length (cut at a character boundary), dates as julian
//! days (`i32`). One writer and one
//! reader, so every record is read back exactly as written or refused as damaged.

use nexus_kernel::KernelError;
use time::Date;

/// Builds a record.
#[derive(Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, n: u8) -> &mut Self {
        self.0.push(n);
        self
    }

    pub(crate) fn u16(&mut self, n: u16) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub(crate) fn i32(&mut self, n: i32) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, n: i64) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub(crate) fn date(&mut self, d: Date) -> &mut Self {
        self.i32(d.to_julian_day())
    }

    /// A count of what follows (`u32`; the caller writes that many, and no record of
    /// the ledger comes near four billion elements).
    pub(crate) fn count(&mut self, n: usize) -> usize {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&n.to_be_bytes());
        n as usize
    }

    /// `s`, cut to at most `u16::MAX` bytes at a character boundary.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        let mut end = s.len().min(usize::from(u16::MAX));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.0.extend_from_slice(&s.as_bytes()[..end]);
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// Reads a record; any short or malformed field is "`what` is damaged".
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { rest: bytes, what }
    }

    pub(crate) fn damaged(&self) -> KernelError {
        KernelError::Internal(format!("{} is damaged", self.what))
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], KernelError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| self.damaged())?;
        self.rest = tail;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, KernelError> {
        Ok(self.take::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, KernelError> {
        self.take().map(u16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Result<i32, KernelError> {
        self.take().map(i32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, KernelError> {
        self.take().map(i64::from_be_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, KernelError> {
        self.take().map(u64::from_be_bytes)
    }

    /// A count written by [`Writer::count`].
    pub(crate) fn count(&mut self) -> Result<usize, KernelError> {
        self.take().map(u32::from_be_bytes).map(|n| n as usize)
    }

    pub(crate) fn date(&mut self) -> Result<Date, KernelError> {
        let day = self.i32()?;
        Date::from_julian_day(day).map_err(|_| self.damaged())
    }

    pub(crate) fn str(&mut self) -> Result<String, KernelError> {
        let n = usize::from(self.u16()?);
        if self.rest.len() < n {
            return Err(self.damaged());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        String::from_utf8(head.to_vec()).map_err(|_| self.damaged())
    }

    /// Whether everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn fields_read_back_as_written_and_short_records_are_damaged() {
        let bytes = Writer::default()
            .u8(7)
            .u16(300)
            .i64(-5)
            .u64(u64::MAX)
            .date(date!(2026 - 02 - 28))
            .str("Müller — Büro")
            .finish();
        let mut r = Reader::new(&bytes, "a test record");
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 300);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.date().unwrap(), date!(2026 - 02 - 28));
        assert_eq!(r.str().unwrap(), "Müller — Büro");
        assert!(r.is_empty());
        let e = Reader::new(&bytes[..5], "a test record").i64().unwrap_err();
        assert_eq!(
            e.to_string(),
            KernelError::Internal("a test record is damaged".into()).to_string()
        );
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40_000);
        let bytes = Writer::default().str(&long).finish();
        let back = Reader::new(&bytes, "x").str().unwrap();
        assert_eq!(back.len(), 65_534);
        assert!(long.starts_with(&back));
    }
}
