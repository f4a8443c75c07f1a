//! Arbitrary values of any `serde::Deserialize` type, drawn from the
//! fuzzer's bytes: a serde [`Deserializer`] whose every choice (an enum's
//! variant, an option, a length, a number, a string) is read from an
//! [`Unstructured`].
//!
//! This is how the targets build arbitrary [`Frame`](pando_distributed_map::frame::Frame)s
//! without naming their variants or fields: a variant or a field added to
//! the protocol is generated (and round-tripped) with no change here.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

/// The longest sequence, map or string generated (frames stay small, so
/// that an execution stays fast).
const MAX_LEN: usize = 64;
/// The deepest nesting generated (a recursive type ends with an error).
const MAX_DEPTH: u32 = 16;

/// An arbitrary value of `T`, built by `T`'s own `Deserialize`
/// implementation from the choices read from `u`.
///
/// # Errors
///
/// [`arbitrary::Error::IncorrectFormat`] if `T`'s `Deserialize` refused
/// the choices (for example a recursive type nested too deep).
///
/// ```
/// use arbitrary::Unstructured;
/// use pando_distributed_map::frame::Frame;
///
/// let mut u = Unstructured::new(&[3, 7, 0, 1, 2, 3, 4, 5]);
/// let frame: Frame = pando_fuzz::arbitrary_serde(&mut u).unwrap();
/// println!("{frame:?}"); // one of the frames, whatever its variants
/// ```
pub fn arbitrary_serde<T: DeserializeOwned>(u: &mut Unstructured<'_>) -> arbitrary::Result<T> {
    T::deserialize(Arb { u, depth: 0 }).map_err(|e| match e {
        Error::Arbitrary(e) => e,
        Error::Custom(_) => arbitrary::Error::IncorrectFormat,
    })
}

#[derive(Debug)]
enum Error {
    Arbitrary(arbitrary::Error),
    Custom(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Arbitrary(e) => write!(f, "{e}"),
            Error::Custom(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

impl From<arbitrary::Error> for Error {
    fn from(e: arbitrary::Error) -> Self {
        Error::Arbitrary(e)
    }
}

struct Arb<'a, 'u> {
    u: &'a mut Unstructured<'u>,
    depth: u32,
}

impl<'u> Arb<'_, 'u> {
    fn get<T: Arbitrary<'u>>(&mut self) -> Result<T, Error> {
        Ok(T::arbitrary(self.u)?)
    }

    fn len(&mut self) -> Result<usize, Error> {
        Ok(self.u.int_in_range(0..=MAX_LEN)?)
    }

    fn nested(&mut self) -> Result<Arb<'_, 'u>, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::Custom("nested too deep".into()));
        }
        Ok(Arb {
            u: &mut *self.u,
            depth: self.depth + 1,
        })
    }
}

macro_rules! scalars {
    ($($method:ident $visit:ident $ty:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
            let value: $ty = self.get()?;
            visitor.$visit(value)
        }
    )*};
}

impl<'de> Deserializer<'de> for Arb<'_, '_> {
    type Error = Error;

    scalars! {
        deserialize_bool visit_bool bool;
        deserialize_i8 visit_i8 i8;
        deserialize_i16 visit_i16 i16;
        deserialize_i32 visit_i32 i32;
        deserialize_i64 visit_i64 i64;
        deserialize_i128 visit_i128 i128;
        deserialize_u8 visit_u8 u8;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_u128 visit_u128 u128;
        deserialize_f32 visit_f32 f32;
        deserialize_f64 visit_f64 f64;
        deserialize_char visit_char char;
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Custom("the generator is not self-describing".into()))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let len = self.len()?;
        let s: String = (0..len).map(|_| self.get::<char>()).collect::<Result<_, _>>()?;
        visitor.visit_string(s)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let len = self.len()?;
        let bytes = self.u.bytes(len.min(self.u.len()))?.to_vec();
        visitor.visit_byte_buf(bytes)
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        if self.get::<bool>()? {
            visitor.visit_some(self.nested()?)
        } else {
            visitor.visit_none()
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self.nested()?)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let left = self.len()?;
        visitor.visit_seq(Seq {
            de: self.nested()?,
            left,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Seq {
            de: self.nested()?,
            left: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Error> {
        let left = self.len()?;
        visitor.visit_map(Seq {
            de: self.nested()?,
            left,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let index = self.u.choose_index(variants.len())?;
        let index = u32::try_from(index).map_err(|_| Error::Custom("too many variants".into()))?;
        visitor.visit_enum(Enum {
            de: self.nested()?,
            index,
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u32(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, a tuple, a struct or a map.
struct Seq<'a, 'u> {
    de: Arb<'a, 'u>,
    left: usize,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.de.nested()?).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> MapAccess<'de> for Seq<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        self.next_element_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.de.nested()?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An enum whose variant was chosen.
struct Enum<'a, 'u> {
    de: Arb<'a, 'u>,
    index: u32,
}

impl<'de, 'a, 'u> EnumAccess<'de> for Enum<'a, 'u> {
    type Error = Error;
    type Variant = Arb<'a, 'u>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(self.index))?;
        Ok((variant, self.de))
    }
}

impl<'de> VariantAccess<'de> for Arb<'_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(fields.len(), visitor)
    }
}
