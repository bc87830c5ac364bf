mod hostile;
mod redis;
mod server;
mod slow_consumer;
