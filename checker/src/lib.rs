//! pando-checker (work in progress).
