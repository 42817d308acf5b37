//! MaaS360 accepts only a few page sizes (docs/maas360.md §3: 25, 50, 100, 200, 250).

/// The page sizes the search APIs accept, smallest first.
pub const ALLOWED_PAGE_SIZES: [u32; 5] = [25, 50, 100, 200, 250];

/// Rounds a requested size up to the nearest allowed one, capped at the largest, so a caller
/// never gets fewer items per page than asked for unless the API cannot give more.
pub fn allowed_page_size(requested: u32) -> u32 {
    ALLOWED_PAGE_SIZES
        .iter()
        .copied()
        .find(|size| *size >= requested)
        .unwrap_or(250)
}

/// Page numbers are 1-based; 0 would be refused, so it means the first page.
pub(crate) fn page_number(requested: u32) -> u32 {
    requested.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_allowed_sizes() {
        assert_eq!(allowed_page_size(0), 25);
        assert_eq!(allowed_page_size(1), 25);
        assert_eq!(allowed_page_size(25), 25);
        assert_eq!(allowed_page_size(26), 50);
        assert_eq!(allowed_page_size(101), 200);
        assert_eq!(allowed_page_size(201), 250);
        assert_eq!(allowed_page_size(10_000), 250);
        assert_eq!(page_number(0), 1);
        assert_eq!(page_number(3), 3);
    }
}
