"""`make demo` (`python -m infra.demo`, in __main__.py): the seeded property (seed.py),
its site on the real bridge (site.py) and a tenant's phone page (wechat.py)."""
