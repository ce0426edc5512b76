"""XeroTB mocks: the same grant, organisation and fixtures as Xero (its trial balances)."""
from tests.connectors.mocks.xero import config, credentials, reference, register, window  # noqa: F401

KEY = "xero_tb"
