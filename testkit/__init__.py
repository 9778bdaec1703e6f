"""Test data builders shared by tests/ and bench/ (neither imports the other): a property
with accounts (World), with a site, plans and meters (Metered), an injected Clock, uid().
Not shipped: the wheel and the zappa package leave testkit out."""
