mod hostile;
mod server;
mod slow_consumer;
