"""Services (verification, storage, query/retrieve), the AE, the SCU and SCP APIs."""
