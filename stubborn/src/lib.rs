//! pando-stubborn (work in progress).
