mod hostile;
mod server;
