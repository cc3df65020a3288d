//! Edits that change only the bytes they must (in progress).
