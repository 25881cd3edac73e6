# What the service tests (issue 11) need beyond the build: Prometheus, whose
# promtool checks the metrics and the shipped alert rules, and whose server
# scrapes a live killer in tests/test_ops_metrics.py. Same pattern as
# $(BUILD)/.deps: root installs what is missing.

$(BUILD)/.service-deps:
	$(Q)mkdir -p $(BUILD)
	$(Q)missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	sh mk/apt-install.sh "the service tests" $$(echo $$missing | tr ' ' '\n' | sort -u)
	$(Q)touch $@

test: $(BUILD)/.service-deps
