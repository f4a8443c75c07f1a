//! pando-limiter (work in progress).
