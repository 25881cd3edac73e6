# Install lane (issue 5): make install / uninstall, and checks of the unit and
# the man page.
#
#   make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]
#       $(PREFIX)/sbin/oomkiller                       the zipapp, 755
#       $(PREFIX)/lib/systemd/system/oomkiller.service  ExecStart = $(PREFIX)/sbin/oomkiller
#       $(PREFIX)/share/man/man8/oomkiller.8
#       /etc/oomkiller.conf                             kept if it exists
#   make uninstall [PREFIX=...] [DESTDIR=...]
#       removes them; /etc/oomkiller.conf only if it is still the shipped one
#   make check-unit       systemd-analyze verify of the unit, as installed
#   make check-man        the man page renders without a warning
#
# The unit goes to $(PREFIX)/lib/systemd/system, the vendor unit directory:
# /usr/local/lib/systemd/system and /usr/lib/systemd/system are both in
# systemd's search path, and /etc/systemd/system stays the administrator's,
# for `systemctl edit` overrides. For another PREFIX, set UNITDIR (e.g.
# UNITDIR=/etc/systemd/system). The config file is always /etc/oomkiller.conf:
# that is the path the program reads.

PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
UNITDIR  ?= $(PREFIX)/lib/systemd/system
MAN8DIR  ?= $(PREFIX)/share/man/man8
CONFFILE ?= /etc/oomkiller.conf
INSTALL  ?= install

UNIT_SRC := dist/oomkiller.service
CONF_SRC := dist/oomkiller.conf
MAN_SRC  := doc/oomkiller.8
# The path the unit ships with, rewritten on install.
UNIT_EXEC := /usr/local/sbin/oomkiller

.PHONY: install uninstall install-deps check-unit check-man

# Tools the checks need, Debian package names: systemd-analyze (systemd),
# groff (groff-base), man (man-db). Same pattern as $(BUILD)/.deps.
$(BUILD)/.install-deps:
	$(Q)mkdir -p $(BUILD)
	$(Q)missing=""; \
	PATH="$$PATH:/usr/sbin:/sbin"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v groff >/dev/null 2>&1 || missing="$$missing groff-base"; \
	command -v man >/dev/null 2>&1 || missing="$$missing man-db"; \
	sh mk/apt-install.sh "the install checks" $$missing
	$(Q)touch $@

install-deps: $(BUILD)/.install-deps

install: oomkiller $(UNIT_SRC) $(CONF_SRC) $(MAN_SRC)
	$(call msg,INSTALL,$(DESTDIR)$(SBINDIR)/oomkiller)
	$(Q)$(INSTALL) -d -m 755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MAN8DIR) \
		$(DESTDIR)$(dir $(CONFFILE))
	$(Q)$(INSTALL) -m 755 oomkiller $(DESTDIR)$(SBINDIR)/oomkiller
	$(call msg,INSTALL,$(DESTDIR)$(UNITDIR)/oomkiller.service)
	$(Q)sed 's|^ExecStart=$(UNIT_EXEC)|ExecStart=$(SBINDIR)/oomkiller|' $(UNIT_SRC) \
		> $(DESTDIR)$(UNITDIR)/oomkiller.service.tmp
	$(Q)grep -qx 'ExecStart=$(SBINDIR)/oomkiller' $(DESTDIR)$(UNITDIR)/oomkiller.service.tmp \
		|| { echo "oomkiller: $(UNIT_SRC) has no ExecStart=$(UNIT_EXEC) line to rewrite" >&2; exit 1; }
	$(Q)v=$$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p'); \
	if [ "$${v:-0}" -ge 253 ]; then \
		sed -i -e 's/^Type=notify$$/Type=notify-reload/' -e '/^ExecReload=/d' \
			$(DESTDIR)$(UNITDIR)/oomkiller.service.tmp; \
	fi
	$(Q)chmod 644 $(DESTDIR)$(UNITDIR)/oomkiller.service.tmp
	$(Q)mv $(DESTDIR)$(UNITDIR)/oomkiller.service.tmp $(DESTDIR)$(UNITDIR)/oomkiller.service
	$(call msg,INSTALL,$(DESTDIR)$(MAN8DIR)/oomkiller.8)
	$(Q)$(INSTALL) -m 644 $(MAN_SRC) $(DESTDIR)$(MAN8DIR)/oomkiller.8
	$(Q)if [ -e $(DESTDIR)$(CONFFILE) ]; then \
		echo "  KEEP     $(DESTDIR)$(CONFFILE) (exists)"; \
	else \
		$(INSTALL) -m 644 $(CONF_SRC) $(DESTDIR)$(CONFFILE) && \
		echo "  INSTALL  $(DESTDIR)$(CONFFILE)"; \
	fi
	$(Q)if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		echo "  run: systemctl daemon-reload && systemctl enable --now oomkiller"; fi

# The config goes only if it is byte for byte the shipped default; an edited
# one is the administrator's and stays, with a note.
uninstall:
	$(call msg,RM,$(DESTDIR)$(SBINDIR)/oomkiller)
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/oomkiller
	$(call msg,RM,$(DESTDIR)$(UNITDIR)/oomkiller.service)
	$(Q)rm -f $(DESTDIR)$(UNITDIR)/oomkiller.service
	$(call msg,RM,$(DESTDIR)$(MAN8DIR)/oomkiller.8)
	$(Q)rm -f $(DESTDIR)$(MAN8DIR)/oomkiller.8
	$(Q)if [ -e $(DESTDIR)$(CONFFILE) ]; then \
		if cmp -s $(CONF_SRC) $(DESTDIR)$(CONFFILE); then \
			rm -f $(DESTDIR)$(CONFFILE) && echo "  RM       $(DESTDIR)$(CONFFILE)"; \
		else \
			echo "  KEEP     $(DESTDIR)$(CONFFILE) (modified; remove it by hand)"; \
		fi; \
	fi

# Verify the unit exactly as `make install` writes it: stage an install, then
# point ExecStart at the staged zipapp (systemd-analyze checks that it is an
# executable) and MANPATH at the staged man page (it checks Documentation=).
CHECK_ROOT := $(BUILD)/check-install
check-unit: oomkiller $(BUILD)/.install-deps
	$(Q)rm -rf $(CHECK_ROOT)
	$(Q)$(MAKE) --no-print-directory install DESTDIR=$(abspath $(CHECK_ROOT)) \
		PREFIX=$(PREFIX) >/dev/null
	$(Q)mkdir -p $(CHECK_ROOT)/verify
	$(Q)sed 's|^ExecStart=|ExecStart=$(abspath $(CHECK_ROOT))|' \
		$(CHECK_ROOT)$(UNITDIR)/oomkiller.service > $(CHECK_ROOT)/verify/oomkiller.service
	$(call msg,VERIFY,$(UNITDIR)/oomkiller.service)
	$(Q)MANPATH=$(abspath $(CHECK_ROOT))$(dir $(MAN8DIR)) \
		systemd-analyze verify $(CHECK_ROOT)/verify/oomkiller.service
	$(Q)rm -rf $(CHECK_ROOT)

check-man: $(MAN_SRC) $(BUILD)/.install-deps
	$(call msg,MAN,$(MAN_SRC))
	$(Q)out=$$(groff -man -ww -z $(MAN_SRC) 2>&1; \
		MANWIDTH=80 man --warnings -l $(MAN_SRC) 2>&1 >/dev/null); \
	if [ -n "$$out" ]; then echo "$$out" >&2; exit 1; fi
