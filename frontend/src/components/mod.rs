//! Parts of the screens.

pub mod banner;
pub mod composer;
pub mod member_panel;
pub mod mention_picker;
pub mod message_list;
pub mod message_parts;
pub mod people_search;
pub mod room_list;
pub mod shown_once;
pub mod status;
