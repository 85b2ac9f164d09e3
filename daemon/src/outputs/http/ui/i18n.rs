//! The web page's strings in English and Simplified Chinese. Every string is a constant holding both, so a
//! missing translation is a compile error, not a blank on the page.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

/// The label of a KPI field of a report (`Kpis`), by its JSON name.
pub fn kpi(name: &str) -> Option<Msg> {
    Some(match name {
        "offered" => KPI_OFFERED,
        "answered" => KPI_ANSWERED,
        "missed" => KPI_MISSED,
        "unknown" => KPI_UNKNOWN,
        "interrupted" => KPI_INTERRUPTED,
        "short_abandons" => KPI_SHORT_ABANDONS,
        "answered_within_target" => KPI_WITHIN_TARGET,
        "service_level_pct" => KPI_SL,
        "abandon_rate_pct" => KPI_ABANDON,
        "asa_s" => KPI_ASA,
        "mean_talk_s" => KPI_TALK,
        "longest_wait_s" => KPI_LONGEST,
        "repeat_callers" => KPI_REPEAT,
        "callbacks_opened" => KPI_CB_OPENED,
        "callbacks_done_on_time" => KPI_CB_ON_TIME,
        "callbacks_overdue" => KPI_CB_OVERDUE,
        "mean_time_to_callback_s" => KPI_TO_CALLBACK,
        "complaints_opened" => KPI_C_OPENED,
        "complaints_first_response_on_time" => KPI_C_FIRST,
        "complaints_resolved" => KPI_C_RESOLVED,
        "mean_time_to_resolve_s" => KPI_TO_RESOLVE,
        "complaints_reopened" => KPI_C_REOPENED,
        "followups_done" => KPI_FOLLOWUPS,
        "mean_satisfaction" => KPI_SATISFACTION,
        "satisfaction_counts" => KPI_SAT_COUNTS,
        "late_signins" => KPI_LATE,
        _ => return None,
    })
}

pub fn task_kind(k: crate::model::TaskKind) -> Msg {
    use crate::model::TaskKind::*;
    match k {
        Callback => KIND_CALLBACK,
        Review => KIND_REVIEW,
        Complaint => KIND_COMPLAINT,
        Followup => KIND_FOLLOWUP,
        Referral => KIND_REFERRAL,
    }
}

pub fn priority(p: crate::model::Priority) -> Msg {
    use crate::model::Priority::*;
    match p {
        Normal => PRIO_NORMAL,
        High => PRIO_HIGH,
        Urgent => PRIO_URGENT,
    }
}

pub fn agent_status(a: crate::model::AgentStatus) -> Msg {
    use crate::model::AgentStatus::*;
    match a {
        SignedOut => AG_SIGNED_OUT,
        Available => AG_AVAILABLE,
        Away => AG_AWAY,
        OnCall => AG_ON_CALL,
    }
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh-CN" => Some(Lang::Zh),
            _ => None,
        }
    }

    pub fn t(self, m: Msg) -> &'static str {
        match self {
            Lang::En => m.en,
            Lang::Zh => m.zh,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Msg {
    pub en: &'static str,
    pub zh: &'static str,
}

macro_rules! catalog {
    ($($name:ident = $en:literal, $zh:literal;)*) => {
        $(pub const $name: Msg = Msg { en: $en, zh: $zh };)*
        /// Every message, for the catalog tests.
        pub const ALL: &[(&str, Msg)] = &[$((stringify!($name), $name)),*];
    };
}

catalog! {
    APP = "linekeeper", "linekeeper";
    NAV_STATUS = "Status", "状态";
    NAV_CALLS = "Calls", "通话";
    NAV_TASKS = "Tasks", "任务";
    NAV_DIRECTORY = "Directory", "客户";
    NAV_REPORTS = "Reports", "报表";
    NAV_CONFIG = "Configuration", "配置";
    NAV_DIAG = "Diagnostics", "诊断";
    NAV_USERS = "Users", "用户";
    NAV_AUDIT = "Audit log", "审计日志";
    LANGUAGE = "Language", "语言";
    SWITCH = "Switch", "切换";
    LOGOUT = "Log out", "退出";
    LOGIN = "Log in", "登录";
    USER = "User", "用户名";
    PASSWORD = "Password", "密码";
    LOGIN_FAILED = "Wrong user name or password.", "用户名或密码错误。";
    LOCKED = "Too many failed logins: try again in %s minutes.", "登录失败次数过多：请 %s 分钟后再试。";
    CHANGE_PASSWORD = "Change password", "修改密码";
    MUST_CHANGE = "This password was set for you: choose your own before going on.", "此密码为初始密码：请先设置您自己的密码。";
    CURRENT_PASSWORD = "Current password", "当前密码";
    NEW_PASSWORD = "New password", "新密码";
    CONFIRM_PASSWORD = "New password again", "再次输入新密码";
    PW_TOO_SHORT = "At least 10 characters.", "至少 10 个字符。";
    PW_MISMATCH = "The two new passwords differ.", "两次输入的新密码不一致。";
    PW_SAME_AS_NAME = "The password must not be the user name.", "密码不能与用户名相同。";
    PW_WRONG_CURRENT = "The current password is wrong.", "当前密码错误。";
    SAVE = "Save", "保存";
    SAVED = "Saved and applied.", "已保存并生效。";
    SEARCH = "Search", "搜索";
    FORBIDDEN = "Your role may not do this.", "您的角色无权执行此操作。";
    BAD_REQUEST_CSRF = "The form has expired or came from another site: reload the page and try again.", "表单已过期或来自其他网站：请刷新页面后重试。";
    NOT_FOUND = "Not found.", "未找到。";
    LINES = "Lines", "线路";
    LINE = "Line", "线路";
    STATE = "State", "状态";
    SINCE = "Since", "起始";
    CALLER = "Caller", "来电";
    QUEUE = "Queue", "队列";
    RINGING = "Ringing", "振铃中";
    TALKING = "Talking", "通话中";
    OPEN_TASKS = "Open tasks", "待办任务";
    OVERDUE_TASKS = "Overdue tasks", "超时任务";
    SERVICE_LEVEL = "Service level today", "今日服务水平";
    ASA = "Average speed of answer", "平均应答时间";
    AGENTS_AVAILABLE = "Agents available", "可用坐席";
    OFFERED_TODAY = "Calls today", "今日来电";
    ANSWERED = "Answered", "已接";
    MISSED = "Missed", "未接";
    AGENTS = "Agents", "坐席";
    AGENT = "Agent", "坐席";
    ST_IDLE = "idle", "空闲";
    ST_RINGING = "ringing", "振铃";
    ST_OFFHOOK = "off hook", "摘机";
    ST_DOWN = "down", "断开";
    LIVE = "live", "实时";
    OFFLINE = "reconnecting…", "正在重连…";
    STORE_FAILING = "The store cannot write: calls are not being recorded and nothing is sent or confirmed until it can. Check free disk space and the disk. Failing since", "存储无法写入：通话未被记录，恢复前不发送、不确认任何内容。请检查磁盘剩余空间和磁盘状态。故障开始于";
    NUMBER = "Number", "号码";
    NAME = "Name", "姓名";
    FROM = "From", "从";
    TO = "To", "到";
    OUTCOME = "Outcome", "结果";
    ANY = "any", "全部";
    STARTED = "Started", "开始";
    WAIT = "Wait (s)", "等待 (秒)";
    TALK = "Talk (s)", "通话 (秒)";
    RINGS = "Rings", "振铃次数";
    NEWER = "‹ Newer", "‹ 较新";
    OLDER = "Older ›", "较早 ›";
    NO_ROWS = "Nothing to show.", "暂无数据。";
    CALL = "Call", "通话";
    TASKS_OF_CALL = "Tasks of this call", "此通话的任务";
    KIND = "Kind", "类型";
    DUE = "Due", "截止";
    ASSIGNEE = "Assignee", "负责人";
    PRIORITY = "Priority", "优先级";
    ATTEMPTS = "Attempts", "次数";
    NOTE = "Note", "备注";
    HISTORY = "History", "历史";
    WHEN = "When", "时间";
    WHO = "Who", "操作人";
    WHAT = "What", "操作";
    OPEN = "open", "待办";
    DONE = "done", "已完成";
    CANCELLED = "cancelled", "已取消";
    ALL_STATES = "all", "全部";
    OVERDUE = "overdue", "已超时";
    ACTIONS = "Actions", "操作";
    ACT_DONE = "Close (done)", "完成";
    ACT_CANCEL = "Cancel", "取消任务";
    ACT_ASSIGN = "Assign", "指派";
    ACT_ACK = "Acknowledge", "确认告警";
    ACT_RESPOND = "Respond", "答复";
    ACT_RESOLVE = "Resolve", "解决";
    ACT_FOLLOWUP = "Record follow-up", "记录回访";
    ACT_REFER = "Refer", "转交";
    ACT_DECISION = "Supervisor decision", "主管决定";
    ACT_COMPLAINT = "Open a complaint", "登记投诉";
    PROMISED_FIX = "Promised fix (e.g. 48h or 2026-12-01T17:00:00+08:00)", "承诺解决时间（如 48h 或 2026-12-01T17:00:00+08:00）";
    SCORE = "Satisfaction (1-5)", "满意度 (1-5)";
    DEPARTMENT = "Department", "部门";
    SEVERITY = "Severity", "严重程度";
    ACTION_DONE = "Done.", "操作成功。";
    DIRECTORY = "Customer directory", "客户名录";
    VIP = "VIP", "VIP";
    LEVEL = "Level", "等级";
    BEST_TIME = "Best time to call", "最佳联系时间";
    ADD_CUSTOMER = "Add or edit a customer", "添加或编辑客户";
    DELETE = "Delete", "删除";
    EDIT = "Edit", "编辑";
    IMPORT_CSV = "Import CSV", "导入 CSV";
    EXPORT_CSV = "Export CSV", "导出 CSV";
    CSV_FILE = "CSV file", "CSV 文件";
    IMPORTED = "Imported %s customers.", "已导入 %s 位客户。";
    REPORTS = "Reports", "报表";
    REPORT_KIND = "Report", "报表类型";
    DATE = "Date", "日期";
    SHOW = "Show", "显示";
    DOWNLOAD_CSV = "Download CSV", "下载 CSV";
    K_SHIFT = "Shift", "班次";
    K_DAILY = "Daily", "日报";
    K_WEEKLY = "Weekly", "周报";
    K_MONTHLY = "Monthly", "月报";
    K_QUARTERLY = "Quarterly", "季报";
    CHART_CALLS_BY_HOUR = "Calls per hour", "每小时来电";
    CHART_SL_BY_DAY = "Service level by day (%)", "每日服务水平 (%)";
    CHART_TASKS_BY_DAY = "Tasks opened and closed by day", "每日新建与完成任务";
    OPENED = "opened", "新建";
    CLOSED = "closed", "完成";
    KPI = "Figure", "指标";
    SITE = "Site", "站点";
    CONFIG = "Configuration", "配置";
    SEC_SITE = "Site", "站点";
    SEC_LINES = "Lines", "线路";
    SEC_MQTT = "MQTT", "MQTT";
    SEC_WEB = "Web", "网页";
    SEC_POLICY = "Service policy", "服务规则";
    SEC_HOURS = "Opening hours and holidays", "营业时间与节假日";
    SEC_SHIFTS = "Shifts", "班次";
    SEC_AGENTS = "Agents", "坐席";
    CONFIG_FILE = "Written to %s; the previous version is kept as %s.", "写入 %s；上一版本保存为 %s。";
    CONFIG_READONLY = "This daemon runs without a configuration file (demo): changes cannot be saved.", "此守护进程没有配置文件（演示模式）：无法保存更改。";
    TOML_SECTION = "As TOML (one block per entry)", "TOML 格式（每项一个块）";
    FIX_ERRORS = "Nothing was saved: fix the fields marked below.", "未保存：请修正下面标出的字段。";
    HOLIDAYS = "Holidays (one date per line, YYYY-MM-DD)", "节假日（每行一个日期，YYYY-MM-DD）";
    WORKDAYS = "Make-up working days (调休), one per line", "调休工作日（每行一个）";
    WORKDAY_HOURS = "Hours of make-up working days", "调休日营业时间";
    HOURS_HELP = "Ranges like 09:00-18:00 or 08:30-12:00, 13:30-18:00; closed; empty for 24x7 when all are empty.", "时间段如 09:00-18:00 或 08:30-12:00, 13:30-18:00；closed 表示休息；全部留空表示全天营业。";
    USERS = "Users", "用户";
    ROLE = "Role", "角色";
    ADD_USER = "Add a user", "添加用户";
    RESET_PASSWORD = "Reset password", "重置密码";
    NEW_PASSWORD_IS = "New password for %s (shown once; it must be changed at first login):", "%s 的新密码（仅显示一次；首次登录须修改）：";
    TOKENS = "API tokens", "API 令牌";
    TOKEN_NAME = "Token name", "令牌名称";
    CREATE_TOKEN = "Create token", "创建令牌";
    REVOKE = "Revoke", "吊销";
    TOKEN_IS = "The new token (shown once):", "新令牌（仅显示一次）：";
    CREATED = "Created", "创建时间";
    AUDIT = "Audit log", "审计日志";
    DIAG = "Diagnostics", "诊断";
    LINK = "Link", "链路";
    MODEM_ID = "Modem identification", "调制解调器型号";
    RAW_LINES = "Raw lines from the line devices (live)", "线路设备原始数据（实时）";
    MQTT_STATE = "MQTT connection", "MQTT 连接";
    DISK_FREE = "Disk space free", "磁盘剩余空间";
    STORE_SIZE = "Store size", "存储大小";
    CLOCK = "Clock", "时钟";
    CLOCK_SYNCED = "synchronised", "已同步";
    CLOCK_UNSYNCED = "NOT synchronised: check NTP (timedatectl)", "未同步：请检查 NTP（timedatectl）";
    VERSION = "Version", "版本";
    OUTBOX = "Events waiting for the broker", "待发送到 MQTT 的事件";
    SESSIONS = "Web sessions", "网页会话";
    UNKNOWN = "unknown", "未知";
    YES = "yes", "是";
    NO = "no", "否";
    KIND_CALLBACK = "callback", "回电";
    KIND_REVIEW = "review", "复核";
    KIND_COMPLAINT = "complaint", "投诉";
    KIND_FOLLOWUP = "follow-up", "回访";
    KIND_REFERRAL = "referral", "转办";
    PRIO_NORMAL = "normal", "普通";
    PRIO_HIGH = "high", "高";
    PRIO_URGENT = "urgent", "紧急";
    AG_SIGNED_OUT = "signed out", "未签到";
    AG_AVAILABLE = "available", "空闲";
    AG_AWAY = "away", "离开";
    AG_ON_CALL = "on a call", "通话中";
    SEV_NORMAL = "normal", "一般";
    SEV_MAJOR = "major", "重大";
    DEFAULT = "(default)", "（默认）";
    DEVICE = "Device", "设备";
    ADDRESS = "Address", "地址";
    LAST_ADMIN = "The last admin keeps the admin role and cannot be deleted.", "最后一位管理员不能降级或删除。";
    USER_EXISTS = "That user exists already.", "该用户已存在。";
    BAD_USER_NAME = "User names are 1-32 letters, digits, '.', '_' or '-'.", "用户名为 1-32 个字母、数字、'.'、'_' 或 '-'。";
    BAD_ROLE = "The role is viewer, agent, supervisor or admin.", "角色为 viewer、agent、supervisor 或 admin。";
    TOKEN_LEGACY = "Made before tokens had roles: it acts as admin. Give it a new token with the role it needs and revoke this one.", "此令牌创建于角色功能之前，拥有管理员权限。请按需要的角色新建令牌并吊销此令牌。";
    REVIEW = "review", "待审查";
    TASKS_HEALTH = "Tasks", "后台任务";
    TASK_NAME = "Task", "任务";
    RESTARTS = "Restarts", "重启次数";
    LAST_FAILURE = "Last failure", "最近一次故障";
    RUNNING = "running", "运行中";
    RESTARTING = "restarting", "正在重启";
    NOT_A_NUMBER = "Not a whole number.", "不是整数。";
    KPI_OFFERED = "Calls offered", "来电总数";
    KPI_ANSWERED = "Answered", "已接";
    KPI_MISSED = "Missed", "未接";
    KPI_UNKNOWN = "Outcome unknown", "结果未知";
    KPI_INTERRUPTED = "Interrupted", "中断";
    KPI_SHORT_ABANDONS = "Short abandons", "短时放弃";
    KPI_WITHIN_TARGET = "Answered within target", "目标时间内接听";
    KPI_SL = "Service level (%)", "服务水平 (%)";
    KPI_ABANDON = "Abandon rate (%)", "放弃率 (%)";
    KPI_ASA = "Average speed of answer (s)", "平均应答时间 (秒)";
    KPI_TALK = "Mean talk time (s)", "平均通话时长 (秒)";
    KPI_LONGEST = "Longest wait (s)", "最长等待 (秒)";
    KPI_REPEAT = "Repeat callers", "重复来电";
    KPI_CB_OPENED = "Callbacks opened", "新建回电任务";
    KPI_CB_ON_TIME = "Callbacks done on time", "按时回电";
    KPI_CB_OVERDUE = "Callbacks overdue", "超时回电";
    KPI_TO_CALLBACK = "Mean time to callback (s)", "平均回电时间 (秒)";
    KPI_C_OPENED = "Complaints opened", "新建投诉";
    KPI_C_FIRST = "Complaints answered on time", "按时答复投诉";
    KPI_C_RESOLVED = "Complaints resolved", "已解决投诉";
    KPI_TO_RESOLVE = "Mean time to resolve (s)", "平均解决时间 (秒)";
    KPI_C_REOPENED = "Complaints reopened", "重新打开的投诉";
    KPI_FOLLOWUPS = "Follow-ups done", "已完成回访";
    KPI_SATISFACTION = "Mean satisfaction (1-5)", "平均满意度 (1-5)";
    KPI_SAT_COUNTS = "Scores 1..5", "评分 1..5 分布";
    KPI_LATE = "Late sign-ins", "迟到签到";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        let mut names = std::collections::HashSet::new();
        for (name, m) in ALL {
            assert!(names.insert(*name), "{name} twice");
            assert!(!m.en.trim().is_empty() && !m.zh.trim().is_empty(), "{name}");
            assert_eq!(
                m.en.matches("%s").count(),
                m.zh.matches("%s").count(),
                "{name}: placeholders differ"
            );
            // Chinese text is Chinese, except for names that are the same in both.
            let same_ok = ["APP", "SEC_MQTT", "VIP"];
            if !same_ok.contains(name) {
                assert_ne!(m.en, m.zh, "{name} is not translated");
            }
        }
        let kpis = serde_json::to_value(crate::report::Kpis::default()).unwrap();
        for k in kpis.as_object().unwrap().keys() {
            assert!(kpi(k).is_some(), "no label for the KPI {k}");
        }
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("en").map(Lang::code), Some("en"));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::Zh.t(NAV_STATUS), "状态");
    }
}
