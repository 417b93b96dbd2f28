-- The ledger's tables and indexes as c2c 0.8.0 created them on postgresql (create_missing).

CREATE TABLE ledger_amendment_fact (
	fact_key VARCHAR(300) NOT NULL,
	contract_id VARCHAR NOT NULL,
	amendment_id VARCHAR NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	propagated_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (fact_key)
);

CREATE INDEX ix_ledger_amendment_fact_contract_id ON ledger_amendment_fact (contract_id);

CREATE TABLE ledger_audit_event (
	id SERIAL NOT NULL,
	event_key VARCHAR NOT NULL,
	contract_id VARCHAR NOT NULL,
	workflow_id VARCHAR NOT NULL,
	run_id VARCHAR,
	stage VARCHAR NOT NULL,
	event VARCHAR NOT NULL,
	detail JSON,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (event_key)
);

CREATE INDEX ix_ledger_audit_event_contract_id ON ledger_audit_event (contract_id);

CREATE TABLE ledger_billing_fact (
	fact_key VARCHAR(300) NOT NULL,
	contract_id VARCHAR NOT NULL,
	reference VARCHAR NOT NULL,
	period VARCHAR NOT NULL,
	period_close BOOLEAN NOT NULL,
	legal_entity VARCHAR NOT NULL,
	currency VARCHAR NOT NULL,
	requested_at TIMESTAMP WITH TIME ZONE NOT NULL,
	invoice_id VARCHAR,
	invoice_date DATE,
	due_on DATE,
	total VARCHAR(64),
	functional_currency VARCHAR,
	exchange_rate VARCHAR(64),
	issued_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (fact_key)
);

CREATE INDEX ix_ledger_billing_fact_contract_id ON ledger_billing_fact (contract_id);

CREATE INDEX ix_ledger_billing_fact_invoice_id ON ledger_billing_fact (invoice_id);

CREATE INDEX ix_ledger_billing_fact_issued_at ON ledger_billing_fact (issued_at);

CREATE INDEX ix_ledger_billing_fact_legal_entity ON ledger_billing_fact (legal_entity);

CREATE TABLE ledger_contract (
	contract_id VARCHAR NOT NULL,
	workflow_id VARCHAR,
	customer_id VARCHAR,
	legal_entity VARCHAR,
	billing_model VARCHAR,
	currency VARCHAR,
	contract_value VARCHAR(64),
	stage VARCHAR NOT NULL,
	approved_at TIMESTAMP WITH TIME ZONE,
	active_at TIMESTAMP WITH TIME ZONE,
	closed_at TIMESTAMP WITH TIME ZONE,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (contract_id)
);

CREATE INDEX ix_ledger_contract_customer_id ON ledger_contract (customer_id);

CREATE INDEX ix_ledger_contract_legal_entity ON ledger_contract (legal_entity);

CREATE INDEX ix_ledger_contract_stage ON ledger_contract (stage);

CREATE TABLE ledger_credit_note_fact (
	credit_note_id VARCHAR NOT NULL,
	contract_id VARCHAR NOT NULL,
	invoice_id VARCHAR NOT NULL,
	currency VARCHAR NOT NULL,
	total VARCHAR(64) NOT NULL,
	issued_on DATE NOT NULL,
	issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (credit_note_id)
);

CREATE INDEX ix_ledger_credit_note_fact_contract_id ON ledger_credit_note_fact (contract_id);

CREATE TABLE ledger_cross_reference (
	id SERIAL NOT NULL,
	claim VARCHAR(600) NOT NULL,
	contract_id VARCHAR NOT NULL,
	system VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	external_id VARCHAR NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (claim)
);

CREATE INDEX ix_ledger_cross_reference_contract_id ON ledger_cross_reference (contract_id);

CREATE INDEX ix_ledger_cross_reference_owner ON ledger_cross_reference (system, kind, external_id);

CREATE TABLE ledger_exception (
	exception_id VARCHAR NOT NULL,
	contract_id VARCHAR NOT NULL,
	workflow_id VARCHAR NOT NULL,
	stage VARCHAR NOT NULL,
	system VARCHAR NOT NULL,
	code VARCHAR NOT NULL,
	message VARCHAR NOT NULL,
	queue VARCHAR NOT NULL,
	step VARCHAR NOT NULL,
	retryable BOOLEAN NOT NULL,
	status VARCHAR NOT NULL,
	opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
	resolved_at TIMESTAMP WITH TIME ZONE,
	resolved_by VARCHAR,
	resolution_note VARCHAR,
	escalated_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (exception_id)
);

CREATE INDEX ix_ledger_exception_contract_id ON ledger_exception (contract_id);

CREATE INDEX ix_ledger_exception_queue ON ledger_exception (queue);

CREATE INDEX ix_ledger_exception_status ON ledger_exception (status);

CREATE TABLE ledger_inbound_event (
	id SERIAL NOT NULL,
	source VARCHAR NOT NULL,
	event_id VARCHAR(255) NOT NULL,
	type VARCHAR(100) NOT NULL,
	contract_id VARCHAR,
	status VARCHAR NOT NULL,
	reason TEXT,
	body TEXT NOT NULL,
	body_digest VARCHAR(64),
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	processed_at TIMESTAMP WITH TIME ZONE,
	attempts INTEGER NOT NULL,
	claimed_until TIMESTAMP WITH TIME ZONE,
	response_status INTEGER,
	response_body JSON,
	PRIMARY KEY (id),
	CONSTRAINT uq_ledger_inbound_event_source_event UNIQUE (source, event_id)
);

CREATE INDEX ix_ledger_inbound_event_contract_id ON ledger_inbound_event (contract_id);

CREATE INDEX ix_ledger_inbound_event_status ON ledger_inbound_event (status);

CREATE TABLE ledger_payment_fact (
	payment_id VARCHAR NOT NULL,
	contract_id VARCHAR NOT NULL,
	invoice_id VARCHAR,
	currency VARCHAR NOT NULL,
	amount VARCHAR(64) NOT NULL,
	received_on DATE NOT NULL,
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (payment_id)
);

CREATE INDEX ix_ledger_payment_fact_contract_id ON ledger_payment_fact (contract_id);
