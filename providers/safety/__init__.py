"""Safety: removing secrets from customers' messages before anything keeps them (`redaction`)."""
