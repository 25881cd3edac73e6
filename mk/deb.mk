# `make deb`: build/oomkiller_VERSION_all.deb, straight from the tree with
# dpkg-deb (no debhelper run, no source package). `make deb-lint` runs
# lintian on it; tests/test_deb.py installs, runs, upgrades over itself and
# purges it for real.
#
#   /usr/sbin/oomkiller                         the zipapp, #!/usr/bin/python3
#   /usr/lib/systemd/system/oomkiller.service   ExecStart=/usr/sbin/oomkiller
#   /usr/lib/systemd/catalog/oomkiller.catalog  the journal's MESSAGE_IDs
#   /usr/share/man/man8/oomkiller.8.gz
#   /etc/oomkiller.conf                         a conffile
#   /usr/share/doc/oomkiller/                   copyright, changelog, examples/
# Maintainer scripts (dist/debian/) use deb-systemd-helper and
# deb-systemd-invoke as dh_installsystemd's would.

DEB_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' src/oomkiller/__init__.py)
DEB         := $(BUILD)/oomkiller_$(DEB_VERSION)_all.deb
DEB_ROOT    := $(BUILD)/deb-root
DEB_SRC     := dist/debian
DEB_DOC     := $(DEB_ROOT)/usr/share/doc/oomkiller

.PHONY: deb deb-lint

$(BUILD)/.deb-deps:
	$(Q)mkdir -p $(BUILD)
	$(Q)missing=""; \
	command -v dpkg-deb >/dev/null 2>&1 || missing="$$missing dpkg"; \
	command -v lintian >/dev/null 2>&1 || missing="$$missing lintian"; \
	sh mk/apt-install.sh "the Debian package" $$missing
	$(Q)touch $@

deb: $(DEB)

$(DEB): $(BUILD)/zip/oomkiller/oomkiller.bpf.o $(UNIT_SRC) $(CONF_SRC) $(MAN_SRC) \
		dist/oomkiller.catalog dist/oomkiller.rules.yml dist/metrics-listen.conf \
		$(wildcard $(DEB_SRC)/*) mk/deb.mk | $(BUILD)/.deb-deps
	$(call msg,DEB,$@)
	$(Q)rm -rf $(DEB_ROOT) && mkdir -p $(DEB_ROOT)/DEBIAN $(DEB_ROOT)/usr/sbin \
		$(DEB_ROOT)/usr/lib/systemd/system $(DEB_ROOT)/usr/lib/systemd/catalog \
		$(DEB_ROOT)/usr/share/man/man8 $(DEB_ROOT)/etc $(DEB_DOC)/examples
	$(Q)$(PYTHON) -m zipapp $(BUILD)/zip -c -p /usr/bin/python3 -m 'oomkiller.commands.cli:main' \
		-o $(DEB_ROOT)/usr/sbin/oomkiller
	$(Q)sed 's|^ExecStart=$(UNIT_EXEC)$$|ExecStart=/usr/sbin/oomkiller|' $(UNIT_SRC) \
		> $(DEB_ROOT)/usr/lib/systemd/system/oomkiller.service
	$(Q)grep -qx 'ExecStart=/usr/sbin/oomkiller' $(DEB_ROOT)/usr/lib/systemd/system/oomkiller.service
	$(Q)cp dist/oomkiller.catalog $(DEB_ROOT)/usr/lib/systemd/catalog/
	$(Q)gzip -9n < $(MAN_SRC) > $(DEB_ROOT)/usr/share/man/man8/oomkiller.8.gz
	$(Q)cp $(CONF_SRC) $(DEB_ROOT)/etc/oomkiller.conf
	$(Q)cp $(DEB_SRC)/copyright $(DEB_DOC)/
	$(Q)sed -e 's/@VERSION@/$(DEB_VERSION)/' \
		-e "s/@DATE@/$$(git log -1 --format=%cD 2>/dev/null || date -R)/" \
		$(DEB_SRC)/changelog.in | gzip -9n > $(DEB_DOC)/changelog.gz
	$(Q)cp dist/oomkiller.rules.yml dist/metrics-listen.conf $(DEB_DOC)/examples/
	$(Q)chmod -R u=rwX,go=rX $(DEB_ROOT) && chmod 755 $(DEB_ROOT)/usr/sbin/oomkiller
	$(Q)for s in postinst prerm postrm; do install -m 755 $(DEB_SRC)/$$s $(DEB_ROOT)/DEBIAN/; done
	$(Q)echo /etc/oomkiller.conf > $(DEB_ROOT)/DEBIAN/conffiles
	$(Q)cd $(DEB_ROOT) && find usr -type f | sort | xargs md5sum > DEBIAN/md5sums
	$(Q)sed -e 's/@VERSION@/$(DEB_VERSION)/' \
		-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)/" \
		$(DEB_SRC)/control.in > $(DEB_ROOT)/DEBIAN/control
	$(Q)chmod 644 $(DEB_ROOT)/DEBIAN/control $(DEB_ROOT)/DEBIAN/conffiles $(DEB_ROOT)/DEBIAN/md5sums
	$(Q)dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $@.tmp >/dev/null && mv $@.tmp $@

deb-lint: $(DEB)
	$(call msg,LINTIAN,$<)
	$(Q)lintian --fail-on error $<

test: $(BUILD)/.deb-deps
