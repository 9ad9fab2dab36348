//! Parts of the screens.

pub mod banner;
pub mod composer;
pub mod message_list;
pub mod room_list;
