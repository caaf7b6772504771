// Hand-kept, portable schema: only Text, Integer, BigInt, Bool and Timestamp,
// so that one set of queries serves SQLite and PostgreSQL.

diesel::table! {
    tenants (id) {
        id -> Text,
        parent_id -> Nullable<Text>,
        path -> Text,
        depth -> Integer,
        name -> Text,
        disable_containers_for_subtenants -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        require_two_factor -> Bool,
    }
}

diesel::table! {
    merchants (id) {
        id -> Text,
        tenant_id -> Text,
        tenant_path -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        tenant_id -> Nullable<Text>,
        merchant_id -> Nullable<Text>,
        scope_path -> Nullable<Text>,
        active -> Bool,
        session_epoch -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        first_failure_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor_id -> Nullable<Text>,
        actor_name -> Text,
        tenant_id -> Nullable<Text>,
        tenant_path -> Nullable<Text>,
        merchant_id -> Nullable<Text>,
        action -> Text,
        object_type -> Text,
        object_id -> Text,
        summary -> Text,
        changes -> Text,
        source_addr -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        chain -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
    }
}

diesel::table! {
    audit_chains (chain) {
        chain -> Text,
        seq -> BigInt,
        head_hash -> Text,
    }
}

diesel::table! {
    audit_legacy_pending (id) {
        id -> Integer,
    }
}

diesel::joinable!(merchants -> tenants (tenant_id));

diesel::table! {
    containers (id) {
        id -> Text,
        tenant_id -> Text,
        tenant_path -> Text,
        name -> Text,
        profile_count -> BigInt,
        instrument_count -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    global_settings (tenant_id) {
        tenant_id -> Text,
        container_id -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    connectors (id) {
        id -> Text,
        merchant_id -> Text,
        tenant_id -> Text,
        tenant_path -> Text,
        name -> Text,
        adapter -> Text,
        api_key -> Text,
        public_key -> Text,
        shared_secret -> Text,
        container_id -> Nullable<Text>,
        ignore_global -> Bool,
        signing -> Bool,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        monri_authenticity_token -> Text,
        monri_merchant_key -> Nullable<Text>,
        lifecycle_webhook_url -> Nullable<Text>,
        expiry_notice_days -> Integer,
    }
}

diesel::table! {
    connector_members (meta_connector_id, member_connector_id) {
        meta_connector_id -> Text,
        member_connector_id -> Text,
    }
}

diesel::table! {
    api_users (id) {
        id -> Text,
        merchant_id -> Text,
        tenant_path -> Text,
        username -> Text,
        password_hash -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    profiles (id) {
        id -> Text,
        container_id -> Text,
        profile_guid -> Text,
        customer_identification -> Text,
        email -> Nullable<Text>,
        customer -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        uuid -> Text,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    instruments (id) {
        id -> Text,
        profile_id -> Text,
        connector_id -> Text,
        payment_token -> Text,
        method -> Text,
        brand -> Nullable<Text>,
        card_holder -> Nullable<Text>,
        first_six -> Nullable<Text>,
        last_four -> Nullable<Text>,
        exp_month -> Nullable<Integer>,
        exp_year -> Nullable<Integer>,
        iban_masked -> Nullable<Text>,
        bic -> Nullable<Text>,
        mandate_id -> Nullable<Text>,
        fingerprint -> Text,
        vault_record -> Text,
        is_preferred -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        expiry_noticed_at -> Nullable<Timestamp>,
        expired_at -> Nullable<Timestamp>,
        card_update_status -> Nullable<Text>,
        card_updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    vault_keys (id) {
        id -> Text,
        purpose -> Text,
        wrapped -> Text,
        master_key_id -> Text,
        active -> Bool,
        created_at -> Timestamp,
        owner -> Nullable<Text>,
        deactivated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reencrypt_jobs (id) {
        id -> Text,
        reason -> Text,
        state -> Text,
        total -> BigInt,
        done -> BigInt,
        resealed -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reencrypt_cursors (job_id, tbl) {
        job_id -> Text,
        tbl -> Text,
        position -> Text,
        finished -> Bool,
    }
}

diesel::table! {
    transactions (uuid) {
        uuid -> Text,
        connector_id -> Text,
        merchant_id -> Text,
        tenant_path -> Text,
        merchant_transaction_id -> Text,
        purchase_id -> Text,
        transaction_type -> Text,
        status -> Text,
        payment_method -> Text,
        amount -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        reference_uuid -> Nullable<Text>,
        instrument_id -> Nullable<Text>,
        profile_id -> Nullable<Text>,
        payment_token -> Nullable<Text>,
        captured_amount -> BigInt,
        refunded_amount -> BigInt,
        voided -> Bool,
        error_code -> Nullable<Integer>,
        error_message -> Nullable<Text>,
        card_summary -> Nullable<Text>,
        body_hash -> Text,
        extra -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    card_tokens (token) {
        token -> Text,
        connector_id -> Text,
        sealed -> Text,
        brand -> Text,
        first_six -> Text,
        last_four -> Text,
        exp_month -> Integer,
        exp_year -> Integer,
        card_holder -> Nullable<Text>,
        fingerprint -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    monri_access_tokens (token_hash) {
        token_hash -> Text,
        connector_id -> Text,
        scopes -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    payment_sessions (id) {
        id -> Text,
        transaction_uuid -> Text,
        kind -> Text,
        token_hash -> Text,
        status -> Text,
        expires_at -> Timestamp,
        request -> Text,
        state -> Text,
        sealed_card -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(containers -> tenants (tenant_id));
diesel::joinable!(connectors -> merchants (merchant_id));
diesel::joinable!(profiles -> containers (container_id));
diesel::joinable!(instruments -> profiles (profile_id));
diesel::joinable!(instruments -> connectors (connector_id));
diesel::joinable!(monri_access_tokens -> connectors (connector_id));

diesel::table! {
    callbacks (id) {
        id -> Text,
        transaction_uuid -> Nullable<Text>,
        connector_id -> Text,
        merchant_id -> Text,
        tenant_path -> Text,
        url -> Text,
        body -> Text,
        body_hash -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        event_type -> Nullable<Text>,
    }
}

diesel::table! {
    callback_attempts (id) {
        id -> Text,
        callback_id -> Text,
        attempt -> Integer,
        started_at -> Timestamp,
        duration_ms -> BigInt,
        http_status -> Nullable<Integer>,
        outcome -> Text,
        response_excerpt -> Nullable<Text>,
        error -> Nullable<Text>,
        worker -> Text,
    }
}

diesel::joinable!(callback_attempts -> callbacks (callback_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    user_two_factor,
    user_recovery_codes,
    vault_keys,
    transactions,
    card_tokens,
    login_throttle,
    audit_chains,
    audit_legacy_pending,
    audit_log,
    containers,
    global_settings,
    connectors,
    connector_members,
    api_users,
    profiles,
    instruments,
    tenants,
    merchants,
    monri_access_tokens,
    callbacks,
    callback_attempts,
    payment_sessions,
    idempotency_keys,
    tx_daily_counts,
    lifecycle_runs,
    config_version
);

diesel::table! {
    /// Runs of the expiry scan and the simulated account updater (migrations 000031, 000034).
    lifecycle_runs (id) {
        id -> Text,
        kind -> Text,
        container_id -> Nullable<Text>,
        status -> Text,
        cursor -> Nullable<Text>,
        done -> BigInt,
        changed -> BigInt,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        total -> BigInt,
        reissued -> BigInt,
        replaced -> BigInt,
        closed -> BigInt,
        actor_id -> Nullable<Text>,
        actor_name -> Nullable<Text>,
    }
}

diesel::table! {
    /// Transactions per merchant, UTC day and status, kept by triggers (migration 000029).
    tx_daily_counts (merchant_id, tx_day, status, tenant_path, shard) {
        merchant_id -> Text,
        tenant_path -> Text,
        tx_day -> Text,
        status -> Text,
        shard -> Integer,
        n -> BigInt,
    }
}

diesel::table! {
    user_two_factor (user_id) {
        user_id -> Text,
        secret_sealed -> Text,
        enabled -> Bool,
        last_step -> Nullable<BigInt>,
        created_at -> Timestamp,
        enabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    user_recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// One row (id 1): bumped by triggers in every transaction that changes the configuration
    /// an API call reads (migration 000020). See `vault::config_cache`.
    config_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    /// Idempotency-Key of the Transaction API (migration 000025): one row per connector and
    /// key, committed with the payment it answers. See `payments::idempotency`.
    idempotency_keys (connector_id, key) {
        connector_id -> Text,
        key -> Text,
        body_hash -> Text,
        status -> Text,
        response_status -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}
