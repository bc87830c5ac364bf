mod access;
mod guard_forwarding;
