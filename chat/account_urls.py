from django.contrib.auth import views as auth_views
from django.urls import path

from chat import account_views, views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", account_views.LogoutView.as_view(), name="logout"),
    path("password/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("sign-out-everywhere/", account_views.sign_out_everywhere, name="sign_out_everywhere"),
]
